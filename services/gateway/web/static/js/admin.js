// The admin console `/admin`: lives, "Nouveau Live", the control room (control.js), the catalog
// (catalog.js) and the settings (settings_form.js, catalog.js).
// Every action goes through the public API; the gateway checks the admin role.

import { api } from "./api.js";
import { mountSignIn, onAuthChange, user } from "./auth.js";
import { formatDate, languageButton, onLanguageChange, t, translate } from "./i18n.js";
import { el } from "./livestate.js";
import { shopSettings, showCatalog } from "./catalog.js";
import { showControl, stopControl } from "./control.js";
import { videoSettings } from "./settings_form.js";
import { copyField, notice } from "./ui.js";

const root = document.getElementById("view");

const LIVES_PAGE = 50;

function liveRow(live) {
  return el("tr", { dataset: { streamId: live.id } },
    el("td", {}, el("a", { href: `#/live/${live.id}`, text: live.title })),
    el("td", {}, el("span", { class: `badge ${live.status}`, text: t(`status.${live.status}`) })),
    el("td", { text: formatDate(live.scheduled_at || live.started_at || live.created_at) }),
    el("td", {}, el("a", { href: `#/live/${live.id}`, text: t("admin.open") }), " · ",
      el("a", { href: `/live/${live.id}`, target: "_blank", text: t("admin.watch") })));
}

async function showLives(view) {
  const [page, catalog] = await Promise.all([api(`/api/live/streams?limit=${LIVES_PAGE}`),
    api("/api/catalog/settings").catch(() => null)]); // the lives are shown whatever the catalog says
  const lives = page.items;
  const rows = lives.map(liveRow);
  const body = el("tbody", {}, rows);
  let cursor = page.next_cursor;
  const more = el("button", { type: "button", class: "small", id: "more-lives", hidden: !cursor,
    text: t("catalog.more"), onclick: async () => {
      const next = await api(`/api/live/streams?limit=${LIVES_PAGE}&cursor=${encodeURIComponent(cursor)}`);
      body.append(...next.items.map(liveRow));
      cursor = next.next_cursor;
      more.hidden = !cursor;
    } });
  view.replaceChildren(el("section", { "aria-labelledby": "lives-title" },
    el("div", { class: "row" },
      el("h1", { id: "lives-title", text: t("admin.lives") }), el("span", { class: "spacer" }),
      el("a", { href: "#/new", class: "button primary", text: t("admin.new") })),
    // A local catalog without a checkout: viewers fill carts they cannot pay for; say it first.
    catalog?.checkout_missing ? el("p", { class: "notice", id: "no-checkout", role: "status" },
      t("admin.nocheckout.console"), " ", el("a", { href: "#/settings", text: t("admin.nocheckout.fix") })) : "",
    lives.length
      ? el("table", {}, body)
      : el("p", { class: "muted", text: t("admin.empty") }),
    more));
}

function showNew(view) {
  const form = el("form", { id: "new-live" },
    el("label", { for: "new-title", text: t("new.title") }),
    el("input", { id: "new-title", name: "title", required: true, maxlength: "200" }),
    el("label", { for: "new-description", text: t("new.description") }),
    el("textarea", { id: "new-description", name: "description", rows: "3", maxlength: "5000" }),
    el("label", { for: "new-date", text: t("new.date") }),
    el("input", { id: "new-date", name: "scheduled_at", type: "datetime-local" }),
    el("p", {}, el("button", { type: "submit", class: "primary", text: t("new.create") })));
  const result = el("div", { role: "status", "aria-live": "polite" });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const date = form.elements.scheduled_at.value;
    try {
      const live = await api("/api/live/streams", { method: "POST", body: {
        title: form.elements.title.value.trim(),
        description: form.elements.description.value.trim() || null,
        scheduled_at: date ? new Date(date).toISOString() : null,
      } });
      form.reset();
      result.replaceChildren(
        el("p", { text: t("new.created") }),
        copyField(t("obs.server"), live.obs?.server ?? live.ingest_url, "obs-server"),
        copyField(t("obs.key"), live.obs?.stream_key ?? live.stream_key, "obs-key"),
        el("p", {}, el("a", { href: `#/live/${live.id}`, class: "button primary", text: t("admin.open") })));
      result.querySelector("code").focus();
    } catch (error) {
      notice(t("error.generic", { detail: error.detail }));
    }
  });
  view.replaceChildren(el("section", { "aria-labelledby": "new-heading" },
    el("h1", { id: "new-heading", text: t("admin.new") }), form, result));
  form.elements.title.focus();
}

async function showSettings(view) {
  const [video, shop] = await Promise.all([videoSettings(), shopSettings()]);
  view.replaceChildren(el("h1", { id: "settings-heading", text: t("admin.settings") }),
    el("div", { class: "settings" }, video, shop));
}

async function route() {
  stopControl();
  notice("");
  const hash = location.hash.replace(/^#/, "") || "/";
  const tab = ["new", "catalog", "settings"].find((name) => hash.startsWith(`/${name}`)) ?? "lives";
  for (const link of document.querySelectorAll(".tabs a")) {
    if (link.dataset.tab === tab && !hash.startsWith("/live/")) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const view = el("div"); // each route renders into its own box: an outdated one lands nowhere
  root.replaceChildren(view);
  if (user()?.role !== "admin") {
    view.replaceChildren(el("p", { class: "notice", text: t("admin.needadmin") }));
    return;
  }
  try {
    const live = hash.match(/^\/live\/([0-9a-fA-F-]{36})$/);
    if (live) await showControl(view, live[1]);
    else if (tab === "new") showNew(view);
    else if (tab === "catalog") await showCatalog(view);
    else if (tab === "settings") await showSettings(view);
    else await showLives(view);
  } catch (error) {
    notice(t("error.generic", { detail: error.detail ?? error.message }));
  }
}

translate();
languageButton(document.getElementById("lang"));
mountSignIn(document.querySelector(".signin"));
window.addEventListener("hashchange", route);
onAuthChange(route);
onLanguageChange(route);
route();
