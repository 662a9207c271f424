// The viewer page's "Upcoming lives" (the scheduled lives, but the one shown, each linking to
// its page) and "Be told of every live": following the shop by e-mail.

import { api } from "./api.js";
import { formatDate, onLanguageChange, t } from "./i18n.js";
import { el } from "./livestate.js";
import { Reminder } from "./reminders.js";

const $ = (id) => document.getElementById(id);
const MOST = 6;
const REFRESH_MS = 60_000; // a live planned, started or moved shows without a reload
let lives = [];
let shown = null;
let timer = null;

const follow = new Reminder({
  form: $("follow-form"), email: $("follow-email"), reminded: $("follow-reminded"),
  feedback: $("follow-feedback"), done: "followed",
});

/** List the scheduled lives among `all` (GET /api/live/streams) but `shownId`, the live shown. */
export function showUpcoming(all, shownId = null) {
  lives = all;
  shown = shownId;
  follow.show("shop", "/api/live/reminders");
  render();
  $("upcoming").hidden = false;
  clearTimeout(timer);
  timer = setTimeout(refresh, REFRESH_MS);
}

async function refresh() {
  try {
    showUpcoming((await api("/api/live/streams?status=scheduled&limit=20")).items, shown);
  } catch {
    timer = setTimeout(refresh, REFRESH_MS); // kept as it was until the network is back
  }
}

/** The scheduled lives among `all`, soonest first (those without a date last). */
export function scheduledLives(all) {
  return all
    .filter((s) => s.status === "scheduled")
    .sort((a, b) => (a.scheduled_at || "9999").localeCompare(b.scheduled_at || "9999"));
}

function render() {
  const next = scheduledLives(lives).filter((s) => s.id !== shown).slice(0, MOST);
  $("upcoming-lives").hidden = !next.length;
  $("upcoming-list").replaceChildren(...next.map((live) => el("li", {},
    el("a", { class: "upcoming-live", href: `/live/${live.id}` },
      el("span", { class: "upcoming-name", text: live.title }),
      live.scheduled_at
        ? el("time", { datetime: live.scheduled_at, text: formatDate(live.scheduled_at) })
        : el("span", { class: "muted", text: t("upcoming.undated") })))));
}

onLanguageChange(render);
