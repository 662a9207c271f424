// A scheduled live on the viewer page: the countdown, "Remind me" (e-mail, and browser push
// where the browser allows it), "Add to calendar". Only the public API: reminders, calendar.ics,
// the push key; the service worker is /sw.js.

import { ApiError, api } from "./api.js";
import { claims } from "./auth.js";
import { currentLang, onLanguageChange } from "./i18n.js";

const LABELS = {
  fr: {
    title: "Me prévenir", starts: "Commence dans {left}", soon: "Ça commence !",
    email: "Votre e-mail", remind: "Me prévenir", push: "Notifications du navigateur",
    calendar: "Ajouter au calendrier",
    confirm: "C'est presque fait : confirmez avec le lien envoyé par e-mail.",
    done: "C'est noté : vous serez prévenu(e) avant le début.",
    pushed: "C'est noté : une notification vous préviendra.",
    denied: "Les notifications sont bloquées dans ce navigateur.",
    error: "Impossible de s'abonner : {detail}",
    d: "j", h: "h", m: "min", s: "s",
  },
  en: {
    title: "Remind me", starts: "Starts in {left}", soon: "Starting now!",
    email: "Your e-mail", remind: "Remind me", push: "Browser notifications",
    calendar: "Add to calendar",
    confirm: "Almost done: confirm with the link we e-mailed you.",
    done: "Done: you will be reminded before it starts.",
    pushed: "Done: a notification will remind you.",
    denied: "Notifications are blocked in this browser.",
    error: "Could not subscribe: {detail}",
    d: "d", h: "h", m: "min", s: "s",
  },
};

const $ = (id) => document.getElementById(id);
let live = null;
let timer = null;

function say(key, values = {}) {
  const text = (LABELS[currentLang()] || LABELS.en)[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

/** "1 d 2 h", "2 h 05 min", "4 min 09 s": the two largest units left. */
export function timeLeft(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const parts = [[Math.floor(total / 86400), "d"], [Math.floor(total / 3600) % 24, "h"],
    [Math.floor(total / 60) % 60, "m"], [total % 60, "s"]];
  const first = parts.findIndex(([n]) => n > 0);
  if (first < 0) return `0 ${say("s")}`;
  return parts.slice(first, first + 2)
    .map(([n, unit], i) => `${i ? String(n).padStart(2, "0") : n} ${say(unit)}`).join(" ");
}

function tick() {
  const left = new Date(live.scheduled_at).getTime() - Date.now();
  $("countdown").textContent = left > 0 ? say("starts", { left: timeLeft(left) }) : say("soon");
}

function renderLabels() {
  $("reminders-title").textContent = say("title");
  $("remind-email-label").textContent = say("email");
  $("remind-submit").textContent = say("remind");
  $("remind-push").textContent = say("push");
  $("remind-calendar").textContent = say("calendar");
  if (live?.scheduled_at) tick();
}

async function subscribe(body, doneKey) {
  const feedback = $("remind-feedback");
  try {
    const reminder = await api(`/api/live/streams/${live.id}/reminders`, {
      method: "POST", body: { ...body, language: currentLang(), time_zone: zone() },
    });
    // Anyone but the address's signed-in owner is only told to look in the inbox.
    const pending = ["pending_confirmation", "check_your_inbox"].includes(reminder?.status);
    feedback.textContent = say(pending ? "confirm" : doneKey);
  } catch (error) {
    feedback.textContent = say("error", { detail: error instanceof ApiError ? error.detail : error });
  }
}

function zone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || undefined;
  } catch {
    return undefined;
  }
}

function pushSupported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

async function subscribePush() {
  if (await Notification.requestPermission() !== "granted") {
    $("remind-feedback").textContent = say("denied");
    return;
  }
  const { public_key: key } = await api("/api/live/push/public-key");
  const worker = await navigator.serviceWorker.register("/sw.js");
  const raw = Uint8Array.from(atob(key.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  const subscription = await worker.pushManager.subscribe({
    userVisibleOnly: true, applicationServerKey: raw,
  });
  await subscribe({ channel: "webpush", subscription: subscription.toJSON() }, "pushed");
}

/** Show the block for a scheduled live, hide it otherwise; called whenever the live changes. */
export function showReminders(stream) {
  const block = $("reminders");
  const scheduled = stream?.status === "scheduled";
  block.hidden = !scheduled;
  clearInterval(timer);
  if (!scheduled) return;
  const changed = live?.id !== stream.id;
  live = stream;
  $("remind-calendar").href = `/api/live/streams/${stream.id}/calendar.ics`;
  $("countdown").hidden = !stream.scheduled_at;
  if (stream.scheduled_at) timer = setInterval(tick, 1000);
  if (changed) $("remind-feedback").textContent = "";
  const email = claims()?.email;
  if (email && !$("remind-email").value) $("remind-email").value = email;
  $("remind-push").hidden = !pushSupported();
  renderLabels();
}

$("remind-form").addEventListener("submit", (event) => {
  event.preventDefault();
  subscribe({ channel: "email", email: $("remind-email").value.trim() }, "done");
});
$("remind-push").addEventListener("click", () => {
  subscribePush().catch((error) => {
    $("remind-feedback").textContent = say("error", { detail: error.message || error });
  });
});
onLanguageChange(renderLabels);
