// app.js: the demo page. Type or generate a puzzle, Solve, and watch the grid change after every
// supervision step. Everything it solves goes through trm.js's Bundle.solve; window.trmDemo exposes the
// same calls to scripts (the test drives the page through them).
//
// URL parameters: bundle=URL (default bundle/, beside the page), backend=auto|wasm|webgpu, threads=N, nosw
// (no service worker: the page is cached for offline use otherwise).

import { BundleError, PuzzleError, fileSource, loadOrt, openBundle } from "./trm.js";
import * as sudoku from "./sudoku.js";

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const app = { ort: null, bundle: null, abort: null, cells: [], size: 0, solving: false, loads: 0 };

function showError(msg) {
  $("error").textContent = msg || "";
  $("error").hidden = !msg;
}

function say(msg) { $("status").textContent = msg; }

/** The bundle's task as a Sudoku grid (size N, N*N tokens, the Sudoku encoding), or 0 where it is none. */
function sudokuSize(b) {
  const t = b.manifest.task;
  const n = t?.size ?? Math.round(Math.sqrt(b.seqLen));
  return t?.name === "sudoku" && sudoku.BOXES[n] && n * n === b.seqLen && b.codec.hasText ? n : 0;
}

// ------------------------------------------------------------------ the grid

function buildGrid() {
  const grid = $("grid");
  grid.replaceChildren();
  app.cells = [];
  const n = app.size;
  grid.hidden = !n;
  if (!n) return;
  const [br, bc] = sudoku.BOXES[n];
  grid.style.gridTemplateColumns = `repeat(${n}, var(--cell))`;
  for (let i = 0; i < n * n; i++) {
    const cell = document.createElement("input");
    cell.className = "cell";
    cell.inputMode = "numeric";
    cell.maxLength = 1;
    cell.autocomplete = "off";
    cell.setAttribute("aria-label", `row ${Math.floor(i / n) + 1}, column ${(i % n) + 1}`);
    const r = Math.floor(i / n), c = i % n;
    if (c % bc === bc - 1 && c < n - 1) cell.classList.add("box-right");
    if (r % br === br - 1 && r < n - 1) cell.classList.add("box-bottom");
    cell.addEventListener("input", () => {
      const v = cell.value.replace(/[^1-9]/g, "").slice(-1);
      cell.value = v && Number(v) <= n ? v : "";
      cell.classList.remove("guess", "wrong");
      syncText();
    });
    cell.addEventListener("keydown", (e) => {
      const move = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -n, ArrowDown: n }[e.key];
      if (move !== undefined && app.cells[i + move]) { app.cells[i + move].focus(); e.preventDefault(); }
    });
    grid.append(cell);
    app.cells.push(cell);
  }
}

/** The grid's digits (0 blank) as the puzzle text the bundle reads ('.' for blanks). */
function syncText() {
  if (!app.size) return;
  $("text").value = app.cells.map((c) => c.value || ".").join("");
}

/** Show a puzzle (tokens) in the grid: givens fixed, the rest blank. */
function showPuzzle(tokens) {
  $("text").value = app.bundle.codec.format(tokens);
  if (!app.size) return;
  tokens.forEach((t, i) => {
    const d = t >= 2 ? String(t - 1) : "";
    app.cells[i].value = d;
    app.cells[i].classList.toggle("given", d !== "");
    app.cells[i].classList.remove("guess", "wrong");
  });
}

/** Show an answer (tokens) over the puzzle's givens: the model's digits in the guess style. */
function showAnswer(puzzle, answer, final = false) {
  if (!app.size) {
    $("result").textContent = app.bundle.codec.format(answer);
    return;
  }
  const n = app.size;
  const digits = answer.map((t) => t - 1);
  answer.forEach((t, i) => {
    if (puzzle[i] >= 2) return;
    const cell = app.cells[i];
    cell.value = t >= 2 && t <= n + 1 ? String(t - 1) : "?";
    cell.classList.add("guess");
    cell.classList.toggle("wrong", final && !cellOk(digits, i, n));
  });
}

function cellOk(g, i, n) {
  const r = Math.floor(i / n), c = i % n, [br, bc] = sudoku.BOXES[n];
  for (let j = 0; j < n * n; j++) {
    if (j === i || g[j] !== g[i]) continue;
    const rj = Math.floor(j / n), cj = j % n;
    if (rj === r || cj === c || (Math.floor(rj / br) === Math.floor(r / br) && Math.floor(cj / bc) === Math.floor(c / bc))) return false;
  }
  return g[i] >= 1 && g[i] <= n;
}

function currentTokens() {
  const text = $("text").value.trim();
  if (!text) throw new PuzzleError("type a puzzle (or press Generate) first");
  const tokens = app.bundle.codec.parse(text);
  if (app.size) {
    const why = sudoku.contradiction(tokens.map((t) => t - 1), app.size);
    if (why) throw new PuzzleError(`${why}; nothing was solved (fix the puzzle)`);
  }
  return tokens;
}

// ------------------------------------------------------------------ solving

/** The options the form sets: views, threshold and max steps (null: the bundle's). */
function formOptions() {
  const t = Number($("threshold").value), m = Number($("maxSteps").value);
  return {
    views: Number($("views").value) || null,
    threshold: t > 0 && t < 1 ? t : null,
    maxSteps: Number.isInteger(m) && m >= 1 ? m : null,
  };
}

/**
 * Solve puzzles (token lists) with the loaded bundle: what the Solve button runs, and what scripts call.
 * Options not given are the bundle's (views: its count and recommended policy).
 */
async function solveTokens(puzzles, opts = {}) {
  if (!app.bundle) throw new BundleError("no bundle is loaded");
  const o = { ...opts };
  for (const k of ["views", "threshold", "maxSteps", "decide", "halting"]) if (o[k] === null || o[k] === undefined) delete o[k];
  return app.bundle.solve(puzzles, o);
}

async function solveClicked() {
  showError("");
  let tokens;
  try {
    tokens = currentTokens();
  } catch (e) {
    showError(e.message);
    return;
  }
  const body = $("steps").querySelector("tbody");
  body.replaceChildren();
  $("result").textContent = "";
  showPuzzle(tokens);
  setSolving(true);
  app.abort = new AbortController();
  const t0 = performance.now();
  try {
    const res = await solveTokens([tokens], {
      ...formOptions(),
      signal: app.abort.signal,
      onStep: (s) => {
        const p = s.puzzles[0];
        showAnswer(tokens, p.answer);
        const tr = document.createElement("tr");
        const views = p.viewSteps.map((n, v) => (n ? v : -1)).filter((v) => v >= 0).length;
        for (const v of [s.step, (p.stepHaltProbability ?? p.haltProbability).toFixed(3), s.ms.toFixed(1), `${s.rows} / ${views}`]) {
          const td = document.createElement("td");
          td.textContent = String(v);
          tr.append(td);
        }
        body.append(tr);
      },
    });
    const r = res.results[0];
    showAnswer(tokens, r.answer, true);
    const ms = performance.now() - t0;
    const ok = app.size ? sudoku.keepsRules(tokens.map((t) => t - 1), r.answer.map((t) => t - 1), app.size) : null;
    const word = ok === null ? "" : ok ? "solved: keeps the rules. " : "not solved: the answer breaks the rules. ";
    const views = r.views > 1
      ? `${r.agreeing_views} of ${r.views} views agree (${res.decision}), ${r.steps} view-steps (${r.view_steps.join(" ")})`
      : `${r.steps} step${r.steps > 1 ? "s" : ""}`;
    $("result").textContent = `${word}${views}, halt probability ${r.halt_probability.toFixed(3)}, ` +
      `${ms.toFixed(0)} ms on ${res.backend}`;
    $("result").dataset.done = "1";
    return res;
  } catch (e) {
    if (e.name === "AbortError") $("result").textContent = "stopped";
    else showError(e.message);
  } finally {
    setSolving(false);
  }
}

function setSolving(on) {
  app.solving = on;
  $("solve").disabled = on || !app.bundle;
  $("stop").disabled = !on;
  $("generate").disabled = on;
  if (on) delete $("result").dataset.done;
}

let seed = Date.now() % 1e9;
function generateClicked() {
  showError("");
  if (!app.size) {
    showError("this bundle's task is not a Sudoku: type a puzzle in its notation");
    return;
  }
  const { puzzle } = sudoku.generate(app.size, seed++);
  showPuzzle(puzzle.map((d) => d + 1));
  $("result").textContent = "";
  $("steps").querySelector("tbody").replaceChildren();
}

// ------------------------------------------------------------------ bundles

function describeBundle(b) {
  const m = b.manifest, c = b.config;
  const mb = Object.values(m.files).reduce((a, f) => a + f.bytes, 0) / 2 ** 20;
  $("bundleInfo").textContent = `${b.name}: ${m.task?.name ?? "tokens"} ${c.seq_len} cells, ${m.target} ${m.precision}, ` +
    `${mb.toFixed(2)} MB, checked (sha256)`;
  const sel = $("views");
  sel.replaceChildren();
  for (let k = 1; k <= b.maxViews; k++) {
    const o = document.createElement("option");
    o.value = String(k);
    o.textContent = String(k);
    sel.append(o);
  }
  sel.value = String(b.viewsDefault.count ?? 1);
  $("threshold").value = String(b.halting.threshold ?? 0.5);
  $("maxSteps").value = String(b.halting.max_steps);
  describePolicy();
}

function describePolicy() {
  if (!app.bundle) return;
  const k = Number($("views").value) || 1;
  const { decide } = app.bundle.plan(k);
  $("policy").textContent = k === 1 ? "one view: the model's own answer" : `${k} views, decided by ${decide.describe()}`;
}

async function useBundle(where) {
  showError("");
  $("solve").disabled = true;
  const old = app.bundle;
  app.bundle = null;
  try {
    const b = await openBundle(where, { ort: app.ort, onProgress: say });
    if (old) await old.release();
    app.bundle = b;
    app.size = sudokuSize(b);
    buildGrid();
    describeBundle(b);
    say(`ready: ${b.manifest.task?.name ?? "model"} on ${b.backend}`);
    $("status").dataset.backend = app.ort.backend;
    if (app.size) generateClicked();
    return b;
  } catch (e) {
    app.bundle = old;
    say(old ? `ready: ${old.manifest.task?.name ?? "model"} on ${old.backend} (the new bundle was refused)` : "no bundle loaded");
    showError(e.message);
    throw e;
  } finally {
    $("solve").disabled = !app.bundle || app.solving;
    app.loads += 1;
  }
}

async function start() {
  const backend = params.get("backend") ?? "auto";
  const threads = params.has("threads") ? Number(params.get("threads")) : undefined;
  $("backend").value = ["auto", "wasm", "webgpu"].includes(backend) ? backend : "auto";
  try {
    app.ort = await loadOrt({ backend: $("backend").value, base: "ort/", threads });
  } catch (e) {
    say("onnxruntime-web did not load");
    showError(`onnxruntime-web did not load (${e.message}); serve the page with trm-edge web, which serves its files`);
    throw e;
  }
  $("threads").value = String(app.ort.threads);
  $("isolation").textContent = app.ort.isolated
    ? `cross-origin isolated: wasm may run ${navigator.hardwareConcurrency || 1} threads`
    : "not cross-origin isolated: wasm runs 1 thread (serve with COOP/COEP headers, as trm-edge web does)";
  const url = params.get("bundle") ?? "bundle/";
  $("bundleUrl").value = url;
  await useBundle(url);
}

$("solve").addEventListener("click", solveClicked);
$("stop").addEventListener("click", () => app.abort?.abort());
$("generate").addEventListener("click", generateClicked);
$("clear").addEventListener("click", () => {
  showPuzzle(new Array(app.bundle?.seqLen ?? 0).fill(1));
  $("result").textContent = "";
});
$("text").addEventListener("input", () => {
  try {
    const t = app.bundle.codec.parse($("text").value);
    showError("");
    showPuzzle(t);
  } catch { /* still typing */ }
});
$("views").addEventListener("change", describePolicy);
$("loadUrl").addEventListener("click", () => useBundle($("bundleUrl").value).catch(() => {}));
$("bundleFiles").addEventListener("change", (e) => {
  if (e.target.files.length) useBundle(fileSource(e.target.files)).catch(() => {});
});
$("restart").addEventListener("click", () => {
  const p = new URLSearchParams(location.search);
  p.set("backend", $("backend").value);
  p.set("threads", $("threads").value);
  location.search = p.toString();
});

const ready = start();
ready.catch(() => {});

if ("serviceWorker" in navigator && !params.has("nosw") && window.isSecureContext) {
  navigator.serviceWorker.register("sw.js").catch(() => {});   // offline once loaded; the page works without it
}

/** What scripts (and the test) call: the page's own solve, bundle loading and state. */
window.trmDemo = {
  ready,
  solveTokens,
  /** Type a puzzle into the page and press Solve, as a person would; resolves with the solve's result. */
  async solveText(text) {
    $("text").value = text;
    $("text").dispatchEvent(new Event("input"));
    return solveClicked();
  },
  loadBundle: (where) => useBundle(where),
  info: () => ({
    backend: app.ort?.backend, threads: app.ort?.threads, isolated: app.ort?.isolated,
    bundle: app.bundle?.name, label: app.bundle?.backend, error: $("error").hidden ? "" : $("error").textContent,
    loads: app.loads, status: $("status").textContent,
  }),
};
