// Layerwise service worker: keeps the app shell and static files, shows an offline page when the
// server cannot be reached. Live data (pages, partials, /events, /api) always comes from the network.
const VERSION = {{ version | tojson }};
const SHELL_CACHE = "layerwise-shell-" + VERSION;
const STATIC_CACHE = "layerwise-static-" + VERSION;
const SHELL = {{ shell | tojson }};
const OFFLINE_URL = "/offline";

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL_CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith("layerwise-") && key !== SHELL_CACHE && key !== STATIC_CACHE) await caches.delete(key);
    }
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname === "/events" || url.pathname.startsWith("/api/")) return;
  if (request.mode === "navigate") {
    event.respondWith(fetch(request).catch(async () => (await caches.match(OFFLINE_URL)) || Response.error()));
  } else if (url.pathname.startsWith("/static/")) {
    event.respondWith(fromCache(request));
  }
  // Partials (htmx) go to the network untouched: when it fails, htmx leaves the page as it is and
  // the page says the server cannot be reached; swapping in an error would replace a printer card.
});

// Static files carry a version in their URL (or never change), so a cached copy is always right.
async function fromCache(request) {
  const cached = await caches.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) {
    const cache = await caches.open(STATIC_CACHE);
    await cache.put(request, response.clone());
  }
  return response;
}
