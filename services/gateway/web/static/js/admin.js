// The admin console `/admin`: lives, "Nouveau Live", the control room (control.js), settings.
// Every action goes through the public API; the gateway checks the admin role.

import { api } from "./api.js";
import { mountSignIn, onAuthChange, user } from "./auth.js";
import { formatDate, languageButton, onLanguageChange, t, translate } from "./i18n.js";
import { el } from "./livestate.js";
import { refusedPublish, showControl, stopControl } from "./control.js";
import { copyField, notice } from "./ui.js";

const root = document.getElementById("view");

async function showLives(view) {
  const [lives, catalog] = await Promise.all([api("/api/live/streams?limit=100"),
    api("/api/catalog/settings").catch(() => null)]); // the lives are shown whatever the catalog says
  const rows = lives.map((live) => el("tr", { dataset: { streamId: live.id } },
    el("td", {}, el("a", { href: `#/live/${live.id}`, text: live.title })),
    el("td", {}, el("span", { class: `badge ${live.status}`, text: t(`status.${live.status}`) })),
    el("td", { text: formatDate(live.scheduled_at || live.started_at || live.created_at) }),
    el("td", {}, el("a", { href: `#/live/${live.id}`, text: t("admin.open") }), " · ",
      el("a", { href: `/live/${live.id}`, target: "_blank", text: t("admin.watch") }))));
  view.replaceChildren(el("section", { "aria-labelledby": "lives-title" },
    el("div", { class: "row" },
      el("h1", { id: "lives-title", text: t("admin.lives") }), el("span", { class: "spacer" }),
      el("a", { href: "#/new", class: "button primary", text: t("admin.new") })),
    // A local catalog without a checkout: viewers fill carts they cannot pay for; say it first.
    catalog?.checkout_missing ? el("p", { class: "notice", id: "no-checkout", role: "status",
      text: t("admin.nocheckout") }) : "",
    lives.length
      ? el("table", {}, el("tbody", {}, rows))
      : el("p", { class: "muted", text: t("admin.empty") })));
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

// Names each platform expects (README "Video platforms"); any other name may be added.
const PLATFORM_KEYS = {
  nginx_rtmp: { config: ["ingest_url", "hls_base_url"], secrets: [] },
  custom_rtmp: { config: ["ingest_url", "playback_url_template"], secrets: [] },
  mux: { config: [], secrets: ["token_id", "token_secret", "webhook_secret"] },
  aws_ivs: { config: ["region", "latency_mode", "channel_type", "recording_configuration_arn", "replay_base_url"], secrets: ["access_key_id", "secret_access_key", "ivs_webhook_secret"] },
  restream: { config: ["playback_url", "ingest_url", "client_id"],
    secrets: ["stream_key", "access_token", "refresh_token", "client_secret"] },
};

function keyValueRows(kind, values, suggested, secret) {
  const body = el("tbody", {});
  const addRow = (name = "", value = "") => {
    const index = body.children.length;
    body.append(el("tr", { dataset: { kind } },
      el("td", {}, el("input", { name: "key", value: name, "aria-label": `${t("settings.key")} ${index + 1}`,
        pattern: "[a-z][a-z0-9_]{0,63}" })),
      el("td", {}, el("input", { name: "value", value: value ?? "", type: secret ? "password" : "text",
        autocomplete: "off", "aria-label": `${t("settings.value")} ${name || index + 1}` }))));
  };
  const names = new Set([...Object.keys(values), ...suggested]);
  for (const name of names) addRow(name, values[name] ?? "");
  const table = el("table", {}, el("thead", {}, el("tr", {},
    el("th", { text: t("settings.key") }), el("th", { text: t("settings.value") }))), body);
  return el("div", {}, table,
    el("button", { type: "button", class: "small", text: t("settings.addrow"), onclick: () => addRow() }));
}

async function showSettings(view) {
  const settings = await api("/api/live/settings");
  const form = el("form", { id: "settings-form" });
  const render = (platform) => {
    const keys = PLATFORM_KEYS[platform] || { config: [], secrets: [] };
    const same = platform === settings.platform;
    form.replaceChildren(
      refusedPublish(settings.last_refused_publish) ?? "",
      el("label", { for: "platform", text: t("settings.platform") }),
      el("select", { id: "platform", name: "platform", onchange: (e) => render(e.target.value) },
        Object.keys(PLATFORM_KEYS).map((p) => el("option", { value: p, selected: p === platform,
          text: settings.supported_platforms.includes(p) ? p : `${p} ${t("settings.unsupported")}` }))),
      el("h2", { text: t("settings.config") }),
      keyValueRows("config", same ? settings.config : {}, keys.config, false),
      el("h2", { text: t("settings.secrets") }),
      keyValueRows("secrets", same ? settings.secrets : {}, keys.secrets, true),
      el("p", {}, el("button", { type: "submit", class: "primary", text: t("settings.save") })),
      el("p", { role: "status", class: "cart-status", id: "settings-status" }));
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { platform: form.elements.platform.value, config: {}, secrets: {} };
    for (const row of form.querySelectorAll("tr[data-kind]")) {
      const name = row.querySelector("[name=key]").value.trim();
      const value = row.querySelector("[name=value]").value.trim();
      if (!name) continue;
      if (row.dataset.kind === "config") { if (value) body.config[name] = value; }
      else if (value) body.secrets[name] = value; // a masked value sent back keeps the secret
    }
    try {
      Object.assign(settings, await api("/api/live/settings", { method: "PUT", body }));
      render(settings.platform);
      document.getElementById("settings-status").textContent = t("settings.saved");
    } catch (error) {
      notice(t("error.generic", { detail: error.detail }));
    }
  });
  render(settings.platform);
  view.replaceChildren(el("section", { "aria-labelledby": "settings-heading" },
    el("h1", { id: "settings-heading", text: t("admin.settings") }), form));
}

async function route() {
  stopControl();
  notice("");
  const hash = location.hash.replace(/^#/, "") || "/";
  const tab = hash.startsWith("/new") ? "new" : hash.startsWith("/settings") ? "settings" : "lives";
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
