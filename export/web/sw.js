// sw.js: the page works offline once loaded. Installing keeps the page, onnxruntime-web's wasm build and
// the default bundle (bundle/manifest.json and the files it lists); afterwards every same-origin GET goes
// to the network first and its answer is kept, and without a network the kept answer is served.
const CACHE = "trm-edge-web-1";
const PAGE = ["./", "index.html", "app.js", "trm.js", "sudoku.js", "style.css",
  "ort/ort.wasm.min.mjs", "ort/ort-wasm-simd-threaded.mjs", "ort/ort-wasm-simd-threaded.wasm"];

async function keepBundle(cache) {
  try {
    const r = await fetch("bundle/manifest.json", { cache: "no-cache" });
    if (!r.ok) return;
    await cache.put("bundle/manifest.json", r.clone());
    const m = await r.json();
    await cache.addAll(Object.keys(m.files ?? {}).map((f) => `bundle/${f}`));
  } catch {
    // no default bundle beside the page: the one the page opens is kept when it is fetched
  }
}

self.addEventListener("install", (e) => {
  e.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(PAGE);
    await keepBundle(cache);
    await self.skipWaiting();
  })());
});
self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));

self.addEventListener("fetch", (e) => {
  const req = e.request;
  if (req.method !== "GET" || new URL(req.url).origin !== self.location.origin) return;
  e.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const res = await fetch(req);
      if (res.ok && res.status === 200) await cache.put(req, res.clone());
      return res;
    } catch (err) {
      const kept = await cache.match(req, { ignoreSearch: true });
      if (kept) return kept;
      throw err;
    }
  })());
});
