// Codepod's service worker (served at /sw.js with `Cache-Control: no-cache`; the server
// prepends CACHE and PRECACHE, the current build's content-hashed files).
//
// - Precaches the offline page, the manifest, the icons, the wasm bundle (/pkg) and the
//   vendor bundles (/vendor) on install; drops older caches on activate.
// - /pkg, /vendor and /icons: cache first (their names change when their bytes do).
// - Page navigations: the network, or the offline page when there is none.
// - Never touches /api or /ws: the API and the terminal always talk to the server.

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(PRECACHE))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) =>
        Promise.all(keys.filter((key) => key.startsWith('codepod-') && key !== CACHE).map((key) => caches.delete(key))),
      )
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith('/api/') || url.pathname.startsWith('/ws/')) return;
  if (/^\/(pkg|vendor|icons)\//.test(url.pathname)) {
    event.respondWith(
      caches.match(request).then(
        (hit) =>
          hit ||
          fetch(request).then((response) => {
            if (response.ok) {
              const copy = response.clone();
              caches.open(CACHE).then((cache) => cache.put(request, copy));
            }
            return response;
          }),
      ),
    );
    return;
  }
  if (request.mode === 'navigate') {
    event.respondWith(fetch(request).catch(() => caches.match('/offline.html')));
  }
});
