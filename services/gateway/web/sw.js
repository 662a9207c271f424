// Vitrine's service worker: shows the reminders pushed by the notifications service
// ({title, body, url, tag, lang}) and opens the live when one is clicked.

self.addEventListener("push", (event) => {
  const data = event.data ? event.data.json() : {};
  event.waitUntil(self.registration.showNotification(data.title || "Vitrine", {
    body: data.body || "", tag: data.tag, lang: data.lang, data: { url: data.url || "/live" },
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = event.notification.data?.url || "/live";
  event.waitUntil((async () => {
    const open = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const same = open.find((client) => client.url === url);
    return same ? same.focus() : self.clients.openWindow(url);
  })());
});
