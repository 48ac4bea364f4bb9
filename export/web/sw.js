// sw.js: the page works offline once loaded. Every same-origin GET goes to the network first and its
// answer is kept; without a network the kept answer is served (the page, onnxruntime-web, the bundle).
const CACHE = "trm-edge-web-1";

self.addEventListener("install", () => self.skipWaiting());
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
      const kept = await cache.match(req, { ignoreSearch: req.mode === "navigate" });
      if (kept) return kept;
      throw err;
    }
  })());
});
