// drive.mjs: drive the demo page in headless Chromium (puppeteer-core against an installed browser) and
// print what it did as JSON. Used by tests/test_web.py and benchmarks/web.py; one browser per run.
//
//   node export/web/tools/drive.mjs < job.json > out.json
//
// job: {"chromium": "/usr/bin/chromium", "url": "http://127.0.0.1:8000/?nosw", "timeout_s": 600,
//       "actions": [{"do": "info"},
//                   {"do": "solve", "puzzles": [[...81 tokens], ...], "options": {"views": 8}},
//                   {"do": "solve_text", "text": "53..7....", "screenshot": "/tmp/solved.png"},
//                   {"do": "load_files", "files": ["/path/manifest.json", ...]},
//                   {"do": "goto", "url": "..."}, {"do": "sw_ready"},
//                   {"do": "step_ms", "puzzle": [...], "reps": 20}]}
// Each action's result is one item of the printed list; an action that throws gives {"error": message}.
import puppeteer from "puppeteer-core";

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const job = JSON.parse(Buffer.concat(chunks).toString("utf-8"));
const timeout = (job.timeout_s ?? 600) * 1000;

const browser = await puppeteer.launch({
  executablePath: job.chromium,
  headless: true,
  protocolTimeout: timeout,
  ...(job.userDataDir ? { userDataDir: job.userDataDir } : {}),      // a profile kept between runs (offline test)
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
    ...(job.args ?? [])],
});
const out = [];
const console_ = [];
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(timeout);
  await page.setViewport({ width: job.width ?? 1100, height: job.height ?? 900 });
  page.on("console", (m) => { if (["error", "warn"].includes(m.type())) console_.push(`${m.type()}: ${m.text()}`); });
  page.on("pageerror", (e) => console_.push(`pageerror: ${e.message}`));

  const open = async (url) => {
    await page.goto(url, { waitUntil: "load" });
    await page.waitForFunction(() => window.trmDemo !== undefined);
    return page.evaluate(async () => {
      try { await window.trmDemo.ready; } catch { /* the page shows it; info() reports it */ }
      return window.trmDemo.info();
    });
  };
  await open(job.url);

  for (const a of job.actions) {
    try {
      if (a.do === "info") {
        out.push(await page.evaluate(() => window.trmDemo.info()));
      } else if (a.do === "goto") {
        out.push(await open(a.url));
      } else if (a.do === "solve") {
        // the page's own solve, one puzzle at a time (batch 1, as trm_edge.runtime is called to compare)
        out.push(await page.evaluate(async (puzzles, options) => {
          const res = [];
          for (const p of puzzles) {
            const r = await window.trmDemo.solveTokens([p], { ...options, yieldEveryStep: false });
            res.push({ ...r.results[0], ms: r.msPerStep, ...(r.trace ? { trace: r.trace } : {}) });
          }
          return res;
        }, a.puzzles, a.options ?? {}));
      } else if (a.do === "solve_text") {
        const r = await page.evaluate(async (text) => {
          const res = await window.trmDemo.solveText(text);
          return { result: document.getElementById("result").textContent, steps: document.querySelectorAll("#steps tbody tr").length,
            grid: Array.from(document.querySelectorAll("#grid .cell"), (c) => c.value).join(""),
            error: window.trmDemo.info().error, answer: res?.results?.[0]?.answer ?? null };
        }, a.text);
        if (a.screenshot) await page.screenshot({ path: a.screenshot, fullPage: true });
        out.push(r);
      } else if (a.do === "load_files") {
        // a person picking a bundle's files: the page checks and opens them (or refuses them, on the page)
        const before = await page.evaluate(() => window.trmDemo.info().loads);
        const input = await page.$("#bundleFiles");
        await input.uploadFile(...a.files);
        await page.waitForFunction((n) => window.trmDemo.info().loads > n, { polling: 100 }, before);
        out.push(await page.evaluate(() => window.trmDemo.info()));
      } else if (a.do === "sw_ready") {
        // the service worker installed (it keeps the page, onnxruntime-web and the bundle): what it kept
        out.push(await page.evaluate(async () => {
          await navigator.serviceWorker.ready;
          const c = await caches.open("trm-edge-web-1");
          return { kept: (await c.keys()).map((r) => new URL(r.url).pathname) };
        }));
      } else if (a.do === "step_ms") {
        // ms per supervision step at batch 1: the puzzle solved with fixed halting, every step timed
        out.push(await page.evaluate(async (puzzle, reps, warmup) => {
          const ms = [];
          while (ms.length < warmup + reps) {
            const r = await window.trmDemo.solveTokens([puzzle], { views: 1, halting: "fixed", maxSteps: Math.min(16, warmup + reps - ms.length), yieldEveryStep: false });
            ms.push(...r.msPerStep);
          }
          return { ms: ms.slice(warmup), info: window.trmDemo.info(), ua: navigator.userAgent };
        }, a.puzzle, a.reps ?? 20, a.warmup ?? 3));
      } else {
        out.push({ error: `unknown action ${a.do}` });
      }
    } catch (e) {
      out.push({ error: String(e.message ?? e).split("\n")[0] });
    }
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify({ results: out, console: console_ }) + "\n");
