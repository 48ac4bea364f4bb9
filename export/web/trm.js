// trm.js: run a TRM bundle (ONNX target) in the browser on onnxruntime-web.
//
// The host loop of the bundle contract (export/README.md), ported from trm_edge/runtime (loop.py's
// `solve`/`drive`, halting.py, decide.py, solver.py's choice of views and policy): a bundle is read
// from its manifest.json, every listed file's sha256 checked with Web Crypto, init.bin read by its
// layout, and step.onnx repeated with q_halt halting and the manifest's views policies. Every
// supervision step is reported through a callback (the answer so far, its halt probability, ms), so
// an app shows anytime answers.
//
//   import { loadOrt, openBundle } from "./trm.js";
//   const ort = await loadOrt({ backend: "auto", base: "ort/" });
//   const b = await openBundle("bundle/", { ort });          // or a FileList of the bundle's files
//   const res = await b.solve([tokens], { views: 8, onStep: (s) => console.log(s.step, s.puzzles[0]) });
//
// No task has code of its own here: puzzles are read and written by the manifest's `task.encoding`.

/** One-line errors naming the problem and the fix, as every runtime of the contract gives them. */
export class BundleError extends Error {
  constructor(message) { super(message); this.name = "BundleError"; }
}
export class PuzzleError extends Error {
  constructor(message) { super(message); this.name = "PuzzleError"; }
}
export class StepError extends Error {
  constructor(message) { super(message); this.name = "StepError"; }
}

export const FORMAT_VERSION = 1;
export const MAX_STEPS = 1024;
export const MAX_VIEWS = 1024;
export const HALTING = ["fixed", "q_halt"];
export const DECISIONS = ["vote", "best_q", "consensus", "best"];
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$/;
const ITEMSIZE = { float32: 4, float16: 2 };
const MAX_MANIFEST_BYTES = 16 << 20;

// ------------------------------------------------------------------ onnxruntime-web

/**
 * Import onnxruntime-web from `base` (a folder holding its dist files, served by this page's host: no CDN).
 * backend "auto": WebGPU where the browser gives an adapter, else wasm; "webgpu" or "wasm" to choose.
 * @param {{backend?: "auto"|"wasm"|"webgpu", base?: string, threads?: number}} [opts]
 * @returns {Promise<{ort: any, backend: "wasm"|"webgpu", threads: number, isolated: boolean}>}
 */
export async function loadOrt(opts = {}) {
  const base = new URL(opts.base ?? "ort/", document.baseURI).href;
  let backend = opts.backend ?? "auto";
  if (backend === "auto" || backend === "webgpu") {
    let adapter = null;
    try { adapter = navigator.gpu ? await navigator.gpu.requestAdapter() : null; } catch { adapter = null; }
    if (!adapter) {
      if (backend === "webgpu") console.warn("WebGPU is not available here: running on wasm");
      backend = "wasm";
    } else {
      backend = "webgpu";
    }
  }
  const file = backend === "webgpu" ? "ort.webgpu.min.mjs" : "ort.wasm.min.mjs";
  const ort = await import(base + file);
  const isolated = globalThis.crossOriginIsolated === true;
  const cores = navigator.hardwareConcurrency || 1;
  // threads need SharedArrayBuffer, which the browser gives only to cross-origin isolated pages (COOP/COEP)
  const threads = isolated ? Math.max(1, Math.min(opts.threads ?? Math.min(4, cores), 64)) : 1;
  ort.env.wasm.wasmPaths = base;
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error";
  return { ort, backend, threads, isolated };
}

// ------------------------------------------------------------------ reading a bundle

/** sha256 of bytes, as 64 lowercase hex digits (Web Crypto). */
export async function sha256Hex(bytes) {
  if (!globalThis.crypto?.subtle) {
    throw new BundleError("this page is not a secure context (https or localhost), so Web Crypto cannot check the " +
      "bundle's sha256: serve the page over https or from localhost");
  }
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Where a bundle's files come from: a base URL (a folder on the page's host) or the files a person picked.
 * @typedef {{name: string, read: (file: string) => Promise<Uint8Array|null>}} Source
 */

/** @param {string} url @returns {Source} */
export function urlSource(url) {
  const base = new URL(url.endsWith("/") ? url : url + "/", document.baseURI).href;
  return {
    name: base,
    async read(file) {
      let r;
      try {
        r = await fetch(base + file, { cache: "no-cache" });
      } catch (e) {
        throw new BundleError(`cannot fetch ${base + file} (${e.message}); check the bundle's URL and that its host ` +
          `allows this page (CORS)`);
      }
      if (r.status === 404) return null;
      if (!r.ok) throw new BundleError(`${base + file}: HTTP ${r.status}; check the bundle's URL`);
      return new Uint8Array(await r.arrayBuffer());
    },
  };
}

/** @param {Iterable<File>} files the bundle folder's files (a folder picker's, or several picked files) @returns {Source} */
export function fileSource(files) {
  const byName = new Map();
  for (const f of files) {
    const rel = f.webkitRelativePath || f.name;
    const parts = rel.split("/");
    if (parts.length > 2) continue;          // files in sub-folders of the picked folder: no part of the bundle
    byName.set(parts[parts.length - 1], f);
  }
  const first = [...files][0];
  const folder = first?.webkitRelativePath ? first.webkitRelativePath.split("/")[0] : "the picked files";
  return {
    name: folder,
    async read(file) {
      const f = byName.get(file);
      return f ? new Uint8Array(await f.arrayBuffer()) : null;
    },
  };
}

function short(v) {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length <= 60 ? s : s.slice(0, 57) + "...";
}

function isInt(v, lo = -Infinity, hi = Infinity) { return Number.isInteger(v) && v >= lo && v <= hi; }

/** The step's inputs and outputs in order, from trm_config (manifest.py's step_io). */
export function stepIO(c, tokenDtype = "int64", batch = null) {
  const B = batch === null ? "batch" : batch;
  const L = c.seq_len, D = c.hidden_size, V = c.vocab_size;
  const N = L + (c.puzzle_emb_ndim ? c.puzzle_emb_len : 0);
  const inputs = [{ name: "tokens", shape: [B, L], dtype: tokenDtype }];
  if (c.puzzle_emb_ndim) inputs.push({ name: "puzzle_emb", shape: [B, c.puzzle_emb_ndim], dtype: "float32" });
  inputs.push({ name: "y", shape: [B, N, D], dtype: "float32" }, { name: "z", shape: [B, N, D], dtype: "float32" });
  const outputs = [{ name: "y_next", shape: [B, N, D], dtype: "float32" },
    { name: "z_next", shape: [B, N, D], dtype: "float32" },
    { name: "logits", shape: [B, L, V], dtype: "float32" },
    { name: "q_halt", shape: [B], dtype: "float32" }];
  return { inputs, outputs };
}

function isPermutation(a, n) {
  if (!Array.isArray(a) || a.length !== n) return false;
  const seen = new Uint8Array(n);
  for (const x of a) {
    if (!isInt(x, 0, n - 1) || seen[x]) return false;
    seen[x] = 1;
  }
  return true;
}

const SAME_RULES = { cells: [], path: ["open", "path", "ends"] };   // runtime/same.py RULES

function sameErrors(s, vocab) {
  if (s === undefined || s === null) return [];
  if (typeof s !== "object" || !Object.hasOwn(SAME_RULES, s.rule)) {
    return [`views.same.rule ${short(s?.rule)} is none this runtime has (${Object.keys(SAME_RULES).join(", ")})`];
  }
  const fields = SAME_RULES[s.rule], errs = [];
  for (const k of Object.keys(s)) if (k !== "rule" && !fields.includes(k)) errs.push(`views.same has an unknown key ${short(k)}`);
  for (const k of fields) {
    const v = s[k], ok = k === "ends" ? Array.isArray(v) && v.length === 2 && v.every((t) => isInt(t, 0, vocab - 1)) : isInt(v, 0, vocab - 1);
    if (!ok) errs.push(`views.same.${k} must be ${k === "ends" ? "two tokens" : "a token"} of 0..${vocab - 1}, got ${short(v)}`);
  }
  return errs;
}

/**
 * What the views' decision compares (runtime/same.py): the answer's cells, or under rule "path" an answer
 * that keeps the puzzle and marks one simple 4-connected path between the two `ends` cells keys as its length.
 */
export function answerKey(same, puzzle, answer) {
  const raw = answer.join(",");
  if (!same || same.rule !== "path") return raw;
  const n = puzzle.length, side = Math.round(Math.sqrt(n));
  if (side * side !== n || answer.length !== n) return raw;
  const route = new Uint8Array(n);
  let start = -1, goal = -1, starts = 0, goals = 0, marked = 0;
  for (let i = 0; i < n; i++) {
    const p = Number(puzzle[i]), a = Number(answer[i]);
    if (p === same.open) {
      if (a !== same.open && a !== same.path) return raw;
      if (a === same.path) { marked++; route[i] = 1; }
    } else if (a !== p) return raw;
    if (p === same.ends[0]) { start = i; starts++; route[i] = 1; }
    if (p === same.ends[1]) { goal = i; goals++; route[i] = 1; }
  }
  if (starts !== 1 || goals !== 1) return raw;
  const dist = new Int32Array(n).fill(-1);     // BFS from the start over the answer's route
  const todo = [start];
  dist[start] = 0;
  for (let h = 0; h < todo.length; h++) {
    const c = todo[h], r = Math.floor(c / side), k = c % side;
    for (const m of [r > 0 ? c - side : -1, r < side - 1 ? c + side : -1, k > 0 ? c - 1 : -1, k < side - 1 ? c + 1 : -1]) {
      if (m >= 0 && route[m] && dist[m] < 0) { dist[m] = dist[c] + 1; todo.push(m); }
    }
  }
  return dist[goal] === marked + 1 ? `path ${marked}` : raw;
}

function policyErrors(p, where) {
  const errs = [];
  if (!p || typeof p !== "object" || !DECISIONS.includes(p.policy)) {
    errs.push(`${where}.policy ${short(p?.policy)} is none this runtime has (${DECISIONS.join(", ")})`);
    return errs;
  }
  for (const k of ["agree", "wave", "budget"]) {
    if (p[k] !== undefined && p[k] !== null && !isInt(p[k], 1, k === "wave" ? MAX_VIEWS : 2 ** 30)) {
      errs.push(`${where}.${k} is ${short(p[k])}, not a whole number from 1`);
    }
  }
  if (p.agree != null && p.policy !== "consensus" && p.policy !== "best") errs.push(`${where}: agree belongs to the consensus and best policies`);
  return errs;
}

/**
 * The rules of the contract this runtime applies to a parsed manifest (export/README.md, rules 1-3, 6, 7,
 * for what a browser reads): the fields it uses have their types and ranges, names are plain and listed,
 * the step's inputs and outputs and init.bin's arrays are what trm_config gives. Returns the problems.
 * @param {any} m @returns {string[]}
 */
export function manifestErrors(m) {
  const errs = [];
  if (!m || typeof m !== "object" || Array.isArray(m)) return ["manifest.json holds no JSON object"];
  if (m.format_version !== FORMAT_VERSION) {
    return [`format_version ${short(m.format_version)}, this runtime reads ${FORMAT_VERSION}`];
  }
  if (m.target !== "onnx") {
    return [`target ${short(m.target)}: this page runs ONNX bundles (trm-edge export --target onnx)`];
  }
  const c = m.trm_config;
  const sizes = ["seq_len", "vocab_size", "hidden_size"];
  if (!c || typeof c !== "object" || !sizes.every((k) => isInt(c[k], 1, 1 << 24))
    || !isInt(c.puzzle_emb_ndim ?? 0, 0, 1 << 24) || !isInt(c.puzzle_emb_len ?? 0, 0, 1 << 16)) {
    return ["trm_config lacks the model's sizes (seq_len, vocab_size, hidden_size, puzzle_emb_ndim, puzzle_emb_len)"];
  }
  const files = m.files;
  if (!files || typeof files !== "object" || Array.isArray(files)) return ["files is not an object of name: {sha256, bytes}"];
  for (const [name, info] of Object.entries(files)) {
    if (!NAME.test(name) || name === "manifest.json") return [`${short(name)} is not a plain file name inside the bundle`];
    if (!info || !/^[0-9a-f]{64}$/.test(info.sha256 ?? "") || !isInt(info.bytes, 0)) {
      return [`files.${name} needs a sha256 (64 lowercase hex digits) and bytes (an integer >= 0)`];
    }
  }
  for (const [what, name] of [["model_file", m.model_file], ["init_bin.file", m.init_bin?.file]]) {
    if (typeof name !== "string" || !NAME.test(name) || name === "manifest.json") {
      errs.push(`${what} ${short(name)} is not a plain file name inside the bundle`);
    } else if (!(name in files)) {
      errs.push(`${what} ${name} is not listed in files (no sha256 to check it against)`);
    }
  }
  if (!("init.npz" in files)) errs.push("init.npz is not listed in files (no sha256 to check it against)");
  if (!m.init_bin) errs.push("the bundle has no init_bin (init.bin), which a browser reads");
  const h = m.halting;
  if (!h || !HALTING.includes(h.policy)) errs.push(`halting.policy ${short(h?.policy)} is none this runtime has (${HALTING.join(", ")})`);
  else {
    if (!isInt(h.max_steps, 1, MAX_STEPS)) errs.push(`halting.max_steps ${short(h.max_steps)} is not 1..${MAX_STEPS}`);
    if (h.threshold !== undefined && !(typeof h.threshold === "number" && h.threshold > 0 && h.threshold < 1)) {
      errs.push(`halting.threshold ${short(h.threshold)} is not strictly between 0 and 1`);
    }
  }
  if (m.batch !== null && m.batch !== undefined && !isInt(m.batch, 1, 4096)) errs.push("batch is not null or 1..4096");
  if (m.max_batch !== null && m.max_batch !== undefined && !isInt(m.max_batch, 1, 4096)) errs.push("max_batch is not null or 1..4096");
  if (errs.length) return errs;

  const tokenDtype = ["int32", "int64"].includes(m.inputs?.[0]?.dtype) ? m.inputs[0].dtype : "int64";
  const want = stepIO(c, tokenDtype, m.batch ?? null);
  const spec = (t) => t ? `${t.name} ${JSON.stringify(t.shape)} ${t.dtype}`.replace(/"/g, "") : "missing";
  for (const what of ["inputs", "outputs"]) {
    const got = Array.isArray(m[what]) ? m[what] : [];
    const w = want[what];
    for (let i = 0; i < Math.max(got.length, w.length); i++) {
      if (spec(got[i]) !== spec(w[i])) {
        errs.push(`${what}[${i}] is ${spec(got[i])}, trm_config and batch give ${w[i] ? spec(w[i]) : "nothing more"}`);
        break;
      }
    }
  }
  const names = [...want.inputs, ...want.outputs].map((t) => t.name).sort();
  const io = m.io_names && typeof m.io_names === "object" ? Object.keys(m.io_names).sort() : [];
  if (JSON.stringify(io) !== JSON.stringify(names)
    || !Object.values(m.io_names).every((v) => typeof v === "string" && v.length > 0)) {
    errs.push(`io_names must name exactly ${names.join(", ")}`);
  }
  const ib = m.init_bin;
  if (ib.byte_order !== undefined && ib.byte_order !== "little") errs.push("init_bin.byte_order is not little");
  if (ib.dtype !== undefined && ib.dtype !== "float32") errs.push("init_bin.dtype is not float32");
  const size = files[ib.file]?.bytes ?? 0;
  const D = c.hidden_size, N = c.seq_len + (c.puzzle_emb_ndim ? c.puzzle_emb_len : 0);
  const seen = new Set();
  for (const a of Array.isArray(ib.arrays) ? ib.arrays : []) {
    const dtype = a.dtype ?? ib.dtype ?? "float32";
    if (!["y_init", "z_init", "puzzle_emb_table"].includes(a.name)) { errs.push(`init_bin lists an unknown array ${short(a.name)}`); continue; }
    if (!(dtype in ITEMSIZE) || (dtype !== "float32" && a.name !== "puzzle_emb_table")) {
      errs.push(`init_bin.${a.name} is ${short(dtype)}; only puzzle_emb_table may be float16`);
      continue;
    }
    if (seen.has(a.name)) errs.push(`init_bin lists ${a.name} twice`);
    seen.add(a.name);
    const shape = a.shape;
    const ok = Array.isArray(shape) && shape.every((d) => isInt(d, 1)) && (a.name === "puzzle_emb_table"
      ? c.puzzle_emb_ndim > 0 && shape.length === 2 && shape[1] === c.puzzle_emb_ndim
      : (shape.length === 1 && shape[0] === D) || (shape.length === 2 && shape[0] === N && shape[1] === D));
    if (!ok) { errs.push(`init_bin.${a.name} has shape ${short(shape)}, which trm_config does not give`); continue; }
    const n = shape.reduce((x, y) => x * y, 1) * ITEMSIZE[dtype];
    if (!isInt(a.offset, 0) || a.offset + n > size) {
      errs.push(`init_bin.${a.name} ends at byte ${a.offset + n}, past the end of ${ib.file} (${size} bytes)`);
    }
  }
  if (!seen.has("y_init") || !seen.has("z_init")) errs.push("init_bin lacks y_init or z_init");

  const v = m.views;
  if (v !== undefined && v !== null) {
    if (!Array.isArray(v.list) || v.list.length < 1 || !isInt(v.count, 1, Math.min(MAX_VIEWS, v.list.length))) {
      errs.push("views: count must be 1..the number of views listed");
    } else {
      if (v.list[0].cells != null || v.list[0].tokens != null) errs.push("views.list[0] must be the identity (cells and tokens null)");
      const keys = new Set();
      v.list.forEach((view, i) => {
        if (view.cells != null && !isPermutation(view.cells, c.seq_len)) errs.push(`views.list[${i}].cells is not a permutation of 0..${c.seq_len - 1}`);
        if (view.tokens != null && !isPermutation(view.tokens, c.vocab_size)) errs.push(`views.list[${i}].tokens is not a permutation of 0..${c.vocab_size - 1}`);
        const key = JSON.stringify([view.cells ?? [], view.tokens ?? []]);
        if (keys.has(key)) errs.push(`views.list[${i}] repeats an earlier view`);
        keys.add(key);
      });
    }
    errs.push(...policyErrors(v.policy, "views.policy"));
    errs.push(...sameErrors(v.same, c.vocab_size));
    const rec = v.recommended ?? [];
    if (!Array.isArray(rec)) errs.push("views.recommended is not a list");
    else {
      rec.forEach((r, i) => {
        if (!isInt(r?.from_views, 1, MAX_VIEWS)) errs.push(`views.recommended[${i}].from_views is not 1..${MAX_VIEWS}`);
        errs.push(...policyErrors(r?.policy, `views.recommended[${i}].policy`));
      });
      const f = rec.map((r) => r?.from_views);
      if (f.some((x, i) => i > 0 && !(x > f[i - 1]))) errs.push("views.recommended must be in increasing from_views, each once");
    }
  }
  return errs.concat(encodingErrors(m.task, c.vocab_size));
}

/** Rule 6 for task.encoding: what a reader needs of it (export/README.md, "The task encoding"). */
function encodingErrors(task, vocab) {
  const enc = task?.encoding;
  if (!enc || !Array.isArray(enc.cells)) return [];
  const errs = [];
  const chars = enc.cells.filter((ch) => ch !== null);
  if (!chars.every((ch) => typeof ch === "string" && ch.length === 1)) errs.push("task.encoding.cells holds no single characters");
  if (new Set(chars).size !== chars.length) errs.push("task.encoding.cells names a character twice");
  if (enc.cells.length > vocab) errs.push(`task.encoding.cells lists ${enc.cells.length} tokens, the vocabulary has ${vocab}`);
  for (const [a, b] of Object.entries(enc.aliases ?? {})) {
    if (!chars.includes(b)) errs.push(`task.encoding.aliases reads ${short(a)} as ${short(b)}, which is no cell`);
    if (chars.includes(a)) errs.push(`task.encoding.aliases: ${short(a)} is a cell itself`);
  }
  return errs;
}

function finite(a) {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return false;
  return true;
}

function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/**
 * init.bin's arrays by the manifest's layout (little-endian float32, a puzzle_emb_table may be float16: widened).
 * @returns {Record<string, {shape: number[], data: Float32Array}>}
 */
export function readInitBin(bytes, manifest, where = "init.bin") {
  const ib = manifest.init_bin;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = {};
  for (const a of ib.arrays) {
    const dtype = a.dtype ?? ib.dtype ?? "float32";
    const n = a.shape.reduce((x, y) => x * y, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      data[i] = dtype === "float16" ? halfToFloat(view.getUint16(a.offset + 2 * i, true)) : view.getFloat32(a.offset + 4 * i, true);
    }
    if (!finite(data)) throw new BundleError(`${where}: ${a.name} holds NaN or infinite values; re-export from a good checkpoint`);
    out[a.name] = { shape: a.shape, data };
  }
  return out;
}

/**
 * Open a bundle: its manifest checked, every listed file fetched, of its size and sha256 (unless
 * verify is false), init.bin read, step.onnx opened by onnxruntime-web. Refuses with a BundleError.
 * @param {string|Source|Iterable<File>} where a base URL, a Source, or the bundle's files
 * @param {{ort: Awaited<ReturnType<typeof loadOrt>>, verify?: boolean, onProgress?: (msg: string) => void}} opts
 * @returns {Promise<Bundle>}
 */
export async function openBundle(where, opts) {
  const src = typeof where === "string" ? urlSource(where) : "read" in where ? where : fileSource(where);
  const say = opts.onProgress ?? (() => {});
  say(`reading ${src.name} manifest.json`);
  const raw = await src.read("manifest.json");
  if (raw === null) {
    throw new BundleError(`${src.name} is not a bundle: it has no manifest.json (export one with trm-edge export --target onnx)`);
  }
  if (raw.byteLength > MAX_MANIFEST_BYTES) throw new BundleError(`${src.name} manifest.json has more than 16 MiB; re-export the bundle`);
  let m;
  try {
    m = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(raw));
  } catch (e) {
    throw new BundleError(`${src.name} manifest.json is not UTF-8 JSON (${e.message.split("\n")[0].slice(0, 80)}); re-export the bundle`);
  }
  const errs = manifestErrors(m);
  if (errs.length) {
    const more = errs.length > 1 ? ` (and ${errs.length - 1} more problem${errs.length > 2 ? "s" : ""})` : "";
    throw new BundleError(`${src.name} manifest.json breaks the bundle contract: ${errs[0]}${more}; re-export the bundle`);
  }
  const bytes = {};
  for (const [name, info] of Object.entries(m.files)) {
    say(`reading ${name} (${(info.bytes / 2 ** 20).toFixed(2)} MB)`);
    const b = await src.read(name);
    if (b === null) throw new BundleError(`${src.name}: ${name} is missing (the manifest lists it); copy the whole bundle`);
    if (b.byteLength !== info.bytes) {
      throw new BundleError(`${src.name}: ${name} has ${b.byteLength} bytes, the manifest lists ${info.bytes} (corrupted or ` +
        `truncated); re-export or re-copy it`);
    }
    if (opts.verify !== false && (await sha256Hex(b)) !== info.sha256) {
      throw new BundleError(`${src.name}: ${name} does not match its sha256 in the manifest (corrupted or altered); ` +
        `re-export or re-copy it`);
    }
    bytes[name] = b;
  }
  const init = readInitBin(bytes[m.init_bin.file], m, `${src.name} ${m.init_bin.file}`);
  say(`opening ${m.model_file} on ${opts.ort.backend}`);
  const { ort } = opts.ort;
  const providers = opts.ort.backend === "webgpu" ? ["webgpu", "wasm"] : ["wasm"];
  let session;
  try {
    session = await ort.InferenceSession.create(bytes[m.model_file], { executionProviders: providers, graphOptimizationLevel: "all" });
  } catch (e) {
    throw new BundleError(`onnxruntime-web cannot load ${src.name} ${m.model_file}: ${String(e.message ?? e).split("\n")[0].slice(0, 200)}`);
  }
  const ours = Object.fromEntries(Object.entries(m.io_names).map(([k, v]) => [v, k]));
  const found = new Set([...session.inputNames, ...session.outputNames].map((n) => ours[n] ?? n));
  const missing = [...m.inputs, ...m.outputs].map((t) => t.name).filter((n) => !found.has(n));
  if (missing.length) {
    throw new BundleError(`${src.name} ${m.model_file} lacks the tensors ${missing.join(", ")} the manifest lists; the model ` +
      `file belongs to another bundle (re-export)`);
  }
  return new Bundle(m, init, session, opts.ort, src.name);
}

// ------------------------------------------------------------------ views and decisions (decide.py)

/** A view: output position i takes input position cells[i], then token t becomes tokens[t]; null: unchanged. */
class View {
  constructor(d) {
    this.cells = d.cells ?? null;
    this.tokens = d.tokens ?? null;
    this.describe = d.describe ?? {};
    this.identity = this.cells === null && this.tokens === null;
    if (this.tokens) {
      this.back = new Array(this.tokens.length);
      this.tokens.forEach((t, i) => { this.back[t] = i; });
    }
  }
  apply(t) {
    let out = this.cells ? this.cells.map((c) => t[c]) : Array.from(t);
    if (this.tokens) out = out.map((x) => this.tokens[x]);
    return out;
  }
  /** An answer of this view in the puzzle's own frame (the identity's as it is). */
  answer(t) {
    if (this.identity) return Array.from(t);
    let x = Array.from(t);
    if (this.tokens) x = x.map((v) => (v >= 0 && v < this.back.length ? this.back[v] : v));
    if (!this.cells) return x;
    const out = new Array(x.length);
    this.cells.forEach((c, i) => { out[c] = x[i]; });
    return out;
  }
}

const IDENTITY = new View({ describe: { name: "identity" } });

function sigmoid(x) { return 1 / (1 + Math.exp(-x)); }   // exp overflow gives 0, as decide.py's _sigmoid

/** The reference's ranking of answers: [{key, count, mean, first}] by count then mean sigmoid(q) descending, stable. */
export function tally(keys, q) {
  const stats = new Map();
  keys.forEach((k, i) => {
    let s = stats.get(k);
    if (!s) { s = { key: k, count: 0, total: 0, first: i }; stats.set(k, s); }
    s.count += 1;
    s.total += sigmoid(Math.fround(q[i]));
  });
  const ranked = [...stats.values()].map((s) => ({ key: s.key, count: s.count, mean: s.total / s.count, first: s.first }));
  return ranked.sort((a, b) => (b.count - a.count) || (b.mean - a.mean));
}

/** A key's score (same.py score): a path's length, else null; and the lowest among keys. */
export function keyScore(k) { return typeof k === "string" && k.startsWith("path ") ? Number(k.slice(5)) : null; }
function bestScore(keys) {
  const s = keys.map(keyScore), scored = s.filter((x) => x !== null);
  return [scored.length ? Math.min(...scored) : null, s];
}

/**
 * A decision policy over the views of a puzzle (decide.py): vote, best_q, consensus or best, with agree, wave,
 * budget and verify as the manifest names them.
 */
export class Decision {
  /** @param {{policy: string, agree?: number|null, wave?: number|null, budget?: number|null, verify?: boolean}} d */
  constructor(d) {
    const errs = policyErrors(d, "policy");
    if (errs.length) throw new BundleError(errs[0]);
    this.name = d.policy;
    this.agree = d.agree ?? null;
    this.wave = d.wave ?? null;
    this.budget = d.budget ?? null;
    this.verify = d.verify === true;
  }
  get exact() { return this.budget === null && !this.verify && this.agree === null; }
  first(views) { return this.wave === null ? views : Math.min(this.wave, views); }
  done(keys, q, running, unlaunched, verified) {
    if (this.verify && verified && verified.some(Boolean)) return true;
    if (running === 0 && unlaunched === 0) return true;
    if (this.name === "best") {
      if (this.agree === null) return false;      // exact: every view runs, since a later one may score better
      const [top, s] = bestScore(keys);
      if (top !== null) return s.filter((x) => x === top).length >= this.agree;
    } else if (this.name !== "consensus") return false;
    if (keys.length === 0) return false;
    const counts = tally(keys, q).map((r) => r.count).sort((a, b) => b - a);
    if (this.agree !== null && counts[0] >= this.agree) return true;
    const runnerUp = counts.length > 1 ? counts[1] : 0;
    return counts[0] > runnerUp + running + unlaunched;
  }
  choose(keys, q) {
    if (this.name === "best_q") {
      let best = 0;
      for (let i = 1; i < q.length; i++) if (q[i] > q[best]) best = i;
      return best;
    }
    const ranked = tally(keys, q);
    const [top, s] = this.name === "best" ? bestScore(keys) : [null, null];
    return top === null ? ranked[0].first : ranked.find((r) => s[r.first] === top).first;
  }
  pick(keys, q, verified) {
    if (this.verify && verified && verified.some(Boolean)) {
      const ok = verified.map((v, i) => (v ? i : -1)).filter((i) => i >= 0);
      return ok[this.choose(ok.map((i) => keys[i]), ok.map((i) => q[i]))];
    }
    return this.choose(keys, q);
  }
  toManifest() {
    const d = { policy: this.name };
    for (const k of ["agree", "wave", "budget"]) if (this[k] !== null) d[k] = this[k];
    if (this.verify) d.verify = true;
    return d;
  }
  describe() {
    return [this.name, this.agree && `${this.agree} agree`, this.wave && `waves of ${this.wave}`,
      this.budget && `budget ${this.budget}`, this.verify && "verifier"].filter(Boolean).join(", ");
  }
}

// ------------------------------------------------------------------ puzzles as text (task.encoding)

/** Reads and writes puzzles by the manifest's task.encoding, as every runtime does (export/README.md). */
export class Codec {
  constructor(task, seqLen) {
    this.task = task ?? null;
    this.enc = task?.encoding ?? null;
    this.seqLen = seqLen;
    this.hasText = Array.isArray(this.enc?.cells);
  }
  /** text -> tokens [seq_len], or a PuzzleError naming the character or the count. */
  parse(text) {
    if (!this.hasText) throw new PuzzleError(`this bundle's task has no text form: give ${this.seqLen} token ids`);
    const { cells, aliases = {}, skip = "" } = this.enc;
    const out = [];
    let i = 0;
    for (const ch of text) {
      i += 1;
      if (ch === "\r" || ch === "\n" || skip.includes(ch)) continue;
      const c = aliases[ch] ?? ch;
      const t = cells.indexOf(c);
      if (t < 0 || c === null) {
        const allowed = [...cells.filter((x) => x !== null), ...Object.keys(aliases)].join(" ");
        throw new PuzzleError(`character ${JSON.stringify(ch)} at position ${i} is not one of the task's: ${allowed}`);
      }
      out.push(t);
    }
    if (out.length !== this.seqLen) throw new PuzzleError(`the puzzle has ${out.length} cells, the model takes ${this.seqLen}`);
    return out;
  }
  /** tokens -> text: token i is cells[i], "?" where that is null or past the end. */
  format(tokens) {
    const cells = this.enc?.cells ?? [];
    return Array.from(tokens, (t) => cells[t] ?? "?").join("");
  }
}

// ------------------------------------------------------------------ the bundle and its host loop

/**
 * What one supervision step reports, for every puzzle of the batch.
 * answer and haltProbability: the answer so far (the leading finished view's, else the running view's with the
 * highest q_halt); stepHaltProbability: the highest of the puzzle's views stepped now (null: none was).
 * @typedef {{step: number, ms: number, rows: number, puzzles: {answer: number[], haltProbability: number,
 *   stepHaltProbability: number|null, viewSteps: number[], done: boolean}[]}} StepReport
 */

/** An opened bundle: its manifest, init arrays and onnxruntime-web session. */
export class Bundle {
  constructor(manifest, init, session, ortInfo, name) {
    this.manifest = manifest;
    this.name = name;
    this.config = manifest.trm_config;
    this.session = session;
    this.ortInfo = ortInfo;
    this.backend = `${ortInfo.backend}${ortInfo.backend === "wasm" ? ` (SIMD, ${ortInfo.threads} thread${ortInfo.threads > 1 ? "s" : ""})` : ""}`;
    this.codec = new Codec(manifest.task, this.config.seq_len);
    const c = this.config;
    this.positions = c.seq_len + (c.puzzle_emb_ndim ? c.puzzle_emb_len : 0);
    this.D = c.hidden_size;
    this.yInit = this._state(init.y_init);
    this.zInit = this._state(init.z_init);
    this.table = init.puzzle_emb_table ?? null;
    const v = manifest.views;
    this.listedViews = v ? v.list.map((d) => new View(d)) : [IDENTITY];
    this.viewsDefault = v ? { count: v.count, policy: v.policy } : { count: 1, policy: null };
    this.recommendedRows = v ? (v.recommended ?? []) : [];
    this.same = v?.same ?? null;         // when two views' answers are the same answer (runtime/same.py)
    this.halting = manifest.halting;
    const names = manifest.io_names;
    this.inName = Object.fromEntries(manifest.inputs.map((t) => [t.name, names[t.name]]));
    this.outName = Object.fromEntries(manifest.outputs.map((t) => [t.name, names[t.name]]));
    this.tokenDtype = manifest.inputs[0].dtype;
  }

  /** A [D] or [P+L, D] init array as one row's [P+L, D] state. */
  _state(a) {
    const n = this.positions * this.D;
    if (a.data.length === n) return a.data;
    const out = new Float32Array(n);
    for (let p = 0; p < this.positions; p++) out.set(a.data, p * this.D);
    return out;
  }

  get seqLen() { return this.config.seq_len; }
  get maxViews() { return this.listedViews.length; }

  /** The policy K views run when none is given (solver.py's recommended): the manifest's row, else its policy. */
  recommended(k) {
    if (k < 2) return null;
    const rows = [...this.recommendedRows].sort((a, b) => b.from_views - a.from_views);
    const row = rows.find((r) => r.from_views <= k);
    const chosen = row ? row.policy : this.viewsDefault.policy;
    return chosen ? new Decision(chosen) : null;
  }

  /**
   * Views and the decision policy a solve runs (solver.py's Solver.solve): views null -> the manifest's
   * count and policy; K views with no policy -> the recommended one for K; one view -> the vote.
   */
  plan(views = null, decide = null) {
    let d = decide ? (decide instanceof Decision ? decide : new Decision(decide)) : null;
    if (views !== null && d === null) d = this.recommended(views);
    const k = views ?? this.viewsDefault.count ?? 1;
    if (!isInt(k, 1, MAX_VIEWS)) throw new PuzzleError(`views must be a whole number from 1 to ${this.maxViews}, got ${short(views)}`);
    if (k > this.maxViews) {
      throw new PuzzleError(`this bundle lists ${this.maxViews} views, not ${k}; ask for fewer or re-export with --views ${k}`);
    }
    if (k === 1 && d === null) d = new Decision({ policy: "vote" });
    d = d ?? (this.viewsDefault.policy ? new Decision(this.viewsDefault.policy) : new Decision({ policy: "vote" }));
    return { views: this.listedViews.slice(0, k), decide: d };
  }

  /** Tokens [seq_len] checked against the vocabulary, or a PuzzleError. */
  checkTokens(t) {
    if (!Array.isArray(t) && !ArrayBuffer.isView(t)) throw new PuzzleError(`a puzzle is a list of ${this.seqLen} token ids`);
    if (t.length !== this.seqLen) throw new PuzzleError(`a puzzle has ${t.length} tokens, the model takes ${this.seqLen}`);
    for (let i = 0; i < t.length; i++) {
      if (!isInt(Number(t[i]), 0, this.config.vocab_size - 1)) {
        throw new PuzzleError(`token ${t[i]} at position ${i} is outside the vocabulary 0..${this.config.vocab_size - 1}`);
      }
    }
    return Array.from(t, Number);
  }

  /** One step over n rows (run_step: chunks padded to a fixed batch, or of at most max_batch rows). */
  async _runStep(s, n, tok, pe, y, z) {
    const size = this.manifest.batch ?? this.manifest.max_batch ?? null;
    const fixed = this.manifest.batch ?? null;
    if (!size || (fixed ? n === size : n <= size)) return this._step(s, n, tok, pe, y, z);
    const L = this.seqLen, S = this.positions * this.D, E = this.config.puzzle_emb_ndim, V = this.config.vocab_size;
    const out = { y: new Float32Array(n * S), z: new Float32Array(n * S), logits: new Float32Array(n * L * V), q: new Float32Array(n) };
    for (let a = 0; a < n; a += size) {
      const m = Math.min(size, n - a), rows = fixed ?? m;
      const idx = Array.from({ length: rows }, (_, i) => a + Math.min(i, m - 1));    // pad: repeat the last row
      const take = (arr, w) => { const o = new arr.constructor(rows * w); idx.forEach((r, i) => o.set(arr.subarray(r * w, r * w + w), i * w)); return o; };
      const part = await this._step(s, rows, take(tok, L), pe && take(pe, E), take(y, S), take(z, S));
      out.y.set(part.y.subarray(0, m * S), a * S);
      out.z.set(part.z.subarray(0, m * S), a * S);
      out.logits.set(part.logits.subarray(0, m * L * V), a * L * V);
      out.q.set(part.q.subarray(0, m), a);
    }
    return out;
  }

  async _step(s, n, tok, pe, y, z) {
    const { ort } = this.ortInfo;
    const L = this.seqLen, N = this.positions, D = this.D;
    const tokens = this.tokenDtype === "int32" ? Int32Array.from(tok) : BigInt64Array.from(tok, (x) => BigInt(x));
    const feeds = {
      [this.inName.tokens]: new ort.Tensor(this.tokenDtype, tokens, [n, L]),
      [this.inName.y]: new ort.Tensor("float32", y, [n, N, D]),
      [this.inName.z]: new ort.Tensor("float32", z, [n, N, D]),
    };
    if (this.inName.puzzle_emb) feeds[this.inName.puzzle_emb] = new ort.Tensor("float32", pe, [n, this.config.puzzle_emb_ndim]);
    let r;
    try {
      r = await this.session.run(feeds);
    } catch (e) {
      throw new StepError(`the onnxruntime-web step failed at step ${s}: ${String(e.message ?? e).split("\n")[0].slice(0, 200)}`);
    }
    const get = async (k) => {
      const t = r[this.outName[k]];
      return t.location && t.location !== "cpu" ? await t.getData(true) : t.data;
    };
    const out = { y: await get("y_next"), z: await get("z_next"), logits: await get("logits"), q: await get("q_halt") };
    const V = this.config.vocab_size;
    if (out.y.length !== n * N * D || out.z.length !== n * N * D || out.logits.length !== n * L * V || out.q.length !== n) {
      throw new StepError("the step returned tensors of other shapes than the manifest's: the model file does not fit the manifest");
    }
    if (!finite(out.logits) || !finite(out.q)) {
      throw new StepError(`the step produced NaN or infinite values at step ${s}: the model's weights or state are broken; ` +
        "re-export from a good checkpoint");
    }
    return out;
  }

  /**
   * Solve puzzles with the host loop: trm_edge.runtime's `Bundle.solve` (the same rows in the same order at
   * every step, so a batch-dependent int8 step sees what Python's sees).
   * @param {number[][]} puzzles B puzzles, each seq_len token ids
   * @param {{views?: number|null, decide?: object|null, halting?: string, threshold?: number, maxSteps?: number,
   *   puzzleId?: number, verifier?: (inputs: number[][], answers: number[][]) => boolean[],
   *   onStep?: (r: StepReport) => void, signal?: AbortSignal, record?: boolean, yieldEveryStep?: boolean}} [opts]
   */
  async solve(puzzles, opts = {}) {
    const h = this.halting;
    const halting = opts.halting ?? h.policy;
    const threshold = opts.threshold ?? h.threshold ?? 0.5;
    const maxSteps = opts.maxSteps ?? h.max_steps;
    if (!HALTING.includes(halting)) throw new PuzzleError(`halting must be one of ${HALTING.join(", ")}, got ${short(halting)}`);
    if (!(typeof threshold === "number" && threshold > 0 && threshold < 1)) {
      throw new PuzzleError(`threshold is a probability strictly between 0 and 1, got ${short(threshold)}`);
    }
    if (!isInt(maxSteps, 1, MAX_STEPS)) throw new PuzzleError(`max_steps must be an integer from 1 to ${MAX_STEPS}, got ${short(maxSteps)}`);
    const { views, decide } = this.plan(opts.views ?? null, opts.decide ?? null);
    if (decide.verify && !opts.verifier) throw new PuzzleError("this policy verifies answers, but no rule checker was given");
    if (!Array.isArray(puzzles) || puzzles.length === 0) throw new PuzzleError("no puzzles given");
    const tokens = puzzles.map((t) => this.checkTokens(t));
    const B = tokens.length, K = views.length, L = this.seqLen, S = this.positions * this.D;
    const E = this.config.puzzle_emb_ndim || 0;
    let pe = null;
    if (E) {
      const id = opts.puzzleId ?? 0;
      if (!this.table) throw new PuzzleError("this bundle ships no puzzle table; it cannot be run here");
      const rows = this.table.shape[0];
      if (!isInt(id, 0, rows - 1)) throw new PuzzleError(`puzzle id ${id} is outside the bundle's table (0..${rows - 1})`);
      pe = this.table.data.subarray(id * E, id * E + E);
    }
    // a row stops once sigmoid(q) > threshold, i.e. q > logit(threshold), compared in float32 as numpy and the runner
    const limit = Math.fround(Math.log(threshold / (1 - threshold)));
    const stop = (q) => halting === "q_halt" && q > limit;
    const seen = views.map((v) => tokens.map((t) => (v.identity ? t : v.apply(t))));     // [K][B][L]

    const steps = Array.from({ length: B }, () => new Array(K).fill(0));
    const q = Array.from({ length: B }, () => new Array(K).fill(NaN));
    const answers = Array.from({ length: B }, () => new Array(K).fill(null));
    const keysOf = Array.from({ length: B }, () => new Array(K).fill(null));   // a finished view's key, computed once
    const state = Array.from({ length: B }, () => new Array(K).fill(0));    // 0 not launched, 1 running, 2 finished, 3 stopped
    const verified = Array.from({ length: B }, () => new Array(K).fill(false));
    const latest = Array.from({ length: B }, () => new Array(K).fill(null));   // each running view's current answer, mapped back
    const w = decide.first(K);
    let rp = [], rv = [];
    let newP = [], newV = [];
    for (let p = 0; p < B; p++) for (let v = 0; v < w; v++) { newP.push(p); newV.push(v); state[p][v] = 1; }
    let rows = { tok: new Int32Array(0), y: new Float32Array(0), z: new Float32Array(0) };
    let keep = null;
    let s = 0;
    const msPerStep = [];
    const trace = [];      // with opts.record: every step's rows [puzzle, view], argmax tokens (the view's frame), q_halt
    while (newP.length || rp.length) {
      if (opts.signal?.aborted) throw new DOMException("the solve was stopped", "AbortError");
      s += 1;
      const t0 = performance.now();
      const kIdx = keep ?? [];          // the rows of the last step still running (rp, rv already theirs)
      const kept = kIdx.length;
      const n = kept + newP.length;
      const tok = new Int32Array(n * L), y = new Float32Array(n * S), z = new Float32Array(n * S);
      kIdx.forEach((i, j) => {
        tok.set(rows.tok.subarray(i * L, i * L + L), j * L);
        y.set(rows.y.subarray(i * S, i * S + S), j * S);
        z.set(rows.z.subarray(i * S, i * S + S), j * S);
      });
      newP.forEach((p, j) => {
        const r = kept + j;
        tok.set(seen[newV[j]][p], r * L);
        y.set(this.yInit, r * S);
        z.set(this.zInit, r * S);
      });
      rp = rp.concat(newP);
      rv = rv.concat(newV);
      let peRows = null;
      if (pe) { peRows = new Float32Array(n * E); for (let r = 0; r < n; r++) peRows.set(pe, r * E); }
      const out = await this._runStep(s, n, tok, peRows, y, z);
      rows = { tok, y: out.y, z: out.z };
      const V = this.config.vocab_size;
      const preds = [];
      for (let r = 0; r < n; r++) {
        const row = new Array(L);
        for (let i = 0; i < L; i++) {
          const o = (r * L + i) * V;
          let best = 0;
          for (let j = 1; j < V; j++) if (out.logits[o + j] > out.logits[o + best]) best = j;   // first of the highest, as argmax
          row[i] = best;
        }
        preds.push(row);
      }
      const fin = new Array(n).fill(false);
      for (let i = 0; i < n; i++) {
        const p = rp[i], v = rv[i];
        steps[p][v] += 1;
        q[p][v] = out.q[i];
        latest[p][v] = views[v].answer(preds[i]);
        fin[i] = steps[p][v] >= maxSteps || stop(out.q[i]);
      }
      if (decide.budget !== null) {
        for (let i = 0; i < n; i++) if (steps[rp[i]].reduce((a, b) => a + b, 0) >= decide.budget) fin[i] = true;
      }
      const finished = [];
      for (let i = 0; i < n; i++) {
        if (!fin[i]) continue;
        answers[rp[i]][rv[i]] = latest[rp[i]][rv[i]];
        keysOf[rp[i]][rv[i]] = answerKey(this.same, tokens[rp[i]], answers[rp[i]][rv[i]]);
        state[rp[i]][rv[i]] = 2;
        finished.push(i);
      }
      if (opts.verifier && decide.verify && finished.length) {
        const ok = opts.verifier(finished.map((i) => tokens[rp[i]]), finished.map((i) => answers[rp[i]][rv[i]]));
        finished.forEach((i, j) => { verified[rp[i]][rv[i]] = Boolean(ok[j]); });
      }
      const launch = [];
      const ps = [...new Set(finished.map((i) => rp[i]))].sort((a, b) => a - b);
      for (const p of ps) {
        const doneV = [...state[p].keys()].filter((v) => state[p][v] === 2);
        const running = state[p].filter((x) => x === 1).length;
        let unlaunched = state[p].filter((x) => x === 0).length;
        const keys = doneV.map((v) => keysOf[p][v]);
        if (decide.budget !== null && steps[p].reduce((a, b) => a + b, 0) >= decide.budget) unlaunched = 0;
        if (decide.done(keys, doneV.map((v) => q[p][v]), running, unlaunched, decide.verify ? doneV.map((v) => verified[p][v]) : null)) {
          state[p] = state[p].map((x) => (x === 1 ? 3 : x));
        } else if (running === 0 && unlaunched) {
          const nxt = [...state[p].keys()].filter((v) => state[p][v] === 0).slice(0, w);
          for (const v of nxt) { state[p][v] = 1; launch.push([p, v]); }
        }
      }
      if (opts.record) trace.push({ step: s, rows: rp.map((p, i) => [p, rv[i]]), predictions: preds, q_halt: Array.from(out.q) });
      const stepQ = new Array(B).fill(-Infinity);        // each puzzle's highest q_halt among its rows of this step
      for (let i = 0; i < n; i++) stepQ[rp[i]] = Math.max(stepQ[rp[i]], out.q[i]);
      keep = rp.map((p, i) => (state[p][rv[i]] === 1 ? i : -1)).filter((i) => i >= 0);
      rp = keep.map((i) => rp[i]);
      rv = keep.map((i) => rv[i]);
      newP = launch.map((x) => x[0]);
      newV = launch.map((x) => x[1]);
      const ms = performance.now() - t0;
      msPerStep.push(ms);
      if (opts.onStep) {
        const puzzles = this._sofar(tokens, state, answers, latest, q, steps, decide)
          .map((r, p) => ({ ...r, stepHaltProbability: stepQ[p] === -Infinity ? null : sigmoid(stepQ[p]) }));
        opts.onStep({ step: s, ms, rows: n, puzzles });
      }
      if (opts.yieldEveryStep !== false) await new Promise((r) => setTimeout(r, 0));    // let the page draw
    }

    const results = [];
    for (let p = 0; p < B; p++) {
      const doneV = [...state[p].keys()].filter((v) => state[p][v] === 2);
      const keys = doneV.map((v) => keysOf[p][v]);
      const c = doneV[decide.pick(keys, doneV.map((v) => q[p][v]), decide.verify ? doneV.map((v) => verified[p][v]) : null)];
      const finished = state[p].map((x) => x === 2);
      results.push({
        answer: answers[p][c],
        steps: steps[p].reduce((a, b) => a + b, 0),
        q_halt: q[p][c],
        halt_probability: sigmoid(q[p][c]),
        views: K,
        policy: decide.toManifest(),
        view_steps: steps[p].slice(),
        view_q: q[p].map((x) => (Number.isNaN(x) ? null : x)),
        finished,
        chosen_view: c,
        agreeing_views: keys.filter((k) => k === keys[doneV.indexOf(c)]).length,
        decided_by: decide.verify && verified[p][c] ? "verifier" : "model",
      });
    }
    return { results, steps: s, msPerStep, backend: this.backend, decision: decide.describe(), ...(opts.record ? { trace } : {}) };
  }

  /** Each puzzle's answer so far: the leading finished answer, else the running view with the highest q_halt. */
  _sofar(tokens, state, answers, latest, q, steps, decide) {
    return tokens.map((_, p) => {
      const doneV = [...state[p].keys()].filter((v) => state[p][v] === 2);
      let v;
      if (doneV.length) v = doneV[decide.choose(doneV.map((x) => answerKey(this.same, tokens[p], answers[p][x])), doneV.map((x) => q[p][x]))];
      else {
        const ran = [...state[p].keys()].filter((x) => latest[p][x] !== null);
        v = ran.reduce((a, b) => (q[p][b] > q[p][a] ? b : a), ran[0]);
      }
      return {
        answer: doneV.length ? answers[p][v] : latest[p][v],
        haltProbability: sigmoid(q[p][v]),
        viewSteps: steps[p].slice(),
        done: !state[p].includes(1),
      };
    });
  }

  /** Give the onnxruntime-web session's memory back. */
  async release() { await this.session.release(); }
}
