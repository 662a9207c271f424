// A scheduled live on the viewer page: the countdown, "Remind me" (e-mail, and browser push
// where the browser allows it), "Add to calendar". Only the public API: reminders, calendar.ics,
// the push key; the service worker is /sw.js. `Reminder` is also the shop's "follow" form.

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
    followed: "C'est noté : vous serez prévenu(e) de chaque live.",
    pushed: "C'est noté : une notification vous préviendra.",
    denied: "Les notifications sont bloquées dans ce navigateur.",
    error: "Impossible de s'abonner : {detail}",
    reminded: "Vous serez prévenu(e)", stop: "Ne plus me prévenir",
    stopped: "C'est noté : vous ne serez plus prévenu(e).",
    unstoppable: "Impossible de se désabonner : {detail}",
    d: "j", h: "h", m: "min", s: "s",
  },
  en: {
    title: "Remind me", starts: "Starts in {left}", soon: "Starting now!",
    email: "Your e-mail", remind: "Remind me", push: "Browser notifications",
    calendar: "Add to calendar",
    confirm: "Almost done: confirm with the link we e-mailed you.",
    done: "Done: you will be reminded before it starts.",
    followed: "Done: you will be told of every live.",
    pushed: "Done: a notification will remind you.",
    denied: "Notifications are blocked in this browser.",
    error: "Could not subscribe: {detail}",
    reminded: "You will be reminded", stop: "Stop",
    stopped: "Done: you will not be reminded any more.",
    unstoppable: "Could not unsubscribe: {detail}",
    d: "d", h: "h", m: "min", s: "s",
  },
};

const $ = (id) => document.getElementById(id);
// Where the token that stops a subscription is kept: + a live's id, or "shop".
const KEPT = "vitrine.reminder.";
let live = null;
let timer = null;

function say(key, values = {}) {
  const text = (LABELS[currentLang()] || LABELS.en)[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

function detail(error) {
  return error instanceof ApiError ? error.detail : error.message || error;
}

/**
 * An e-mail form subscribing at one address of the API (a live's reminders, or the shop's),
 * and its "You will be reminded — Stop" row, shown instead while this browser keeps the
 * subscription's unsubscribe token. `offers`: what asks to subscribe, hidden meanwhile.
 */
export class Reminder {
  constructor({ form, email, reminded, feedback, offers = [form], done = "done" }) {
    Object.assign(this, { form, email, reminded, feedback, offers, done, key: null, path: null });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.subscribe({ channel: "email", email: email.value.trim() });
    });
    reminded.querySelector("button").addEventListener("click", () => this.stop());
    onLanguageChange(() => this.render());
  }

  /** Subscribe at `path` from now on, the token kept under `key` (a live's id, or "shop"). */
  show(key, path) {
    if (key !== this.key) this.feedback.textContent = "";
    this.key = key;
    this.path = path;
    const own = claims()?.email;
    if (own && !this.email.value) this.email.value = own;
    this.render();
  }

  get token() {
    return localStorage.getItem(KEPT + this.key);
  }

  render() {
    const kept = Boolean(this.token);
    for (const offer of this.offers) offer.hidden = kept;
    this.reminded.hidden = !kept;
    this.reminded.querySelector("span").textContent = say("reminded");
    this.reminded.querySelector("button").textContent = say("stop");
  }

  /** POST `body` (language and time zone added); the answer said, its token kept if any. */
  async subscribe(body, done = this.done) {
    try {
      const reminder = await api(this.path, {
        method: "POST", body: { ...body, language: currentLang(), time_zone: zone() },
      });
      // Anyone but the address's signed-in owner is only told to look in the inbox.
      const pending = ["pending_confirmation", "check_your_inbox"].includes(reminder?.status);
      if (reminder?.unsubscribe_token) localStorage.setItem(KEPT + this.key, reminder.unsubscribe_token);
      this.feedback.textContent = say(pending ? "confirm" : done);
      this.render();
    } catch (error) {
      this.feedback.textContent = say("error", { detail: detail(error) });
    }
  }

  /** Unsubscribe with the kept token; one already gone (404) is stopped all the same. */
  async stop() {
    try {
      await api(`/api/live/reminders/${encodeURIComponent(this.token)}`, { method: "DELETE" });
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) {
        this.feedback.textContent = say("unstoppable", { detail: detail(error) });
        return;
      }
    }
    localStorage.removeItem(KEPT + this.key);
    this.feedback.textContent = say("stopped");
    this.render();
    this.form.querySelector("input")?.focus(); // the button pressed is gone: focus stays near
  }
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

const liveReminder = new Reminder({
  form: $("remind-form"), email: $("remind-email"), reminded: $("remind-reminded"),
  feedback: $("remind-feedback"),
  offers: pushSupported() ? [$("remind-form"), $("remind-push")] : [$("remind-form")],
});

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
  await liveReminder.subscribe({ channel: "webpush", subscription: subscription.toJSON() }, "pushed");
}

/** Show the block for a scheduled live, hide it otherwise; called whenever the live changes. */
export function showReminders(stream) {
  const block = $("reminders");
  const scheduled = stream?.status === "scheduled";
  block.hidden = !scheduled;
  clearInterval(timer);
  if (!scheduled) return;
  live = stream;
  $("remind-calendar").href = `/api/live/streams/${stream.id}/calendar.ics`;
  $("countdown").hidden = !stream.scheduled_at;
  if (stream.scheduled_at) timer = setInterval(tick, 1000);
  liveReminder.show(stream.id, `/api/live/streams/${stream.id}/reminders`);
  renderLabels();
}

$("remind-push").addEventListener("click", () => {
  subscribePush().catch((error) => {
    $("remind-feedback").textContent = say("error", { detail: error.message || error });
  });
});
onLanguageChange(renderLabels);
