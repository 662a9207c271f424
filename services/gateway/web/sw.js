// Vitrine's service worker: shows the reminders pushed by the notifications service
// ({title, body, url, tag, lang, unsubscribe_url, unsubscribe_label}) with a "Stop these
// messages" action; a click opens the live, the action unsubscribes without opening anything.

self.addEventListener("push", (event) => {
  const data = event.data ? event.data.json() : {};
  event.waitUntil(self.registration.showNotification(data.title || "Vitrine", {
    body: data.body || "", tag: data.tag, lang: data.lang,
    data: { url: data.url || "/live", unsubscribeUrl: data.unsubscribe_url },
    actions: data.unsubscribe_url
      ? [{ action: "unsubscribe", title: data.unsubscribe_label || "Stop these messages" }]
      : [],
  }));
});

self.addEventListener("notificationclick", (event) => {
  event.waitUntil(notificationClicked(event.notification, event.action));
});

/** What a click on `notification` does (`action`: the button clicked, "" for the body). */
async function notificationClicked(notification, action) {
  notification.close();
  const { url = "/live", unsubscribeUrl } = notification.data || {};
  if (action === "unsubscribe") return unsubscribe(unsubscribeUrl);
  const open = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const same = open.find((client) => client.url === url);
  return same ? same.focus() : self.clients.openWindow(url);
}

/** The RFC 8058 one-click unsubscribe: a POST without a body (only Vitrine can push a link:
 * payloads are encrypted for this browser by the notifications service). */
async function unsubscribe(link) {
  if (!link) return;
  try {
    await fetch(link, { method: "POST", credentials: "omit" });
  } catch {
    // Offline: the next message carries the link again.
  }
}
