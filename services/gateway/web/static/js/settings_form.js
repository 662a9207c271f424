// Typed settings fields (numbers sent as numbers, choices as selects, secrets write-only), and the
// video platform's form. Each field knows how to show a loaded value and how to read it back.

import { api } from "./api.js";
import { refusedPublish } from "./control.js";
import { t } from "./i18n.js";
import { el } from "./livestate.js";

// What each platform's provider accepts (services/streams/providers/*.validate_config and the
// secrets each reads): unknown config names are refused there, so the form offers these only.
const RTMP = "(rtmps?|srt)://\\S+";
const HTTP = "https?://\\S+";
export const PLATFORMS = {
  nginx_rtmp: { config: [
    { name: "ingest_url", kind: "url", pattern: "rtmps?://\\S+" },
    { name: "hls_base_url", kind: "url", pattern: HTTP },
    { name: "replay_base_url", kind: "url", pattern: HTTP },
    { name: "control_url", kind: "url", pattern: HTTP },
    { name: "reconnect_grace_s", kind: "number", min: 0, max: 3600 },
  ], secrets: [] },
  mux: { config: [
    { name: "reconnect_window", kind: "number", min: 0.1, max: 1800 },
    { name: "latency_mode", kind: "select", choices: ["standard", "reduced", "low"] },
    { name: "api_url", kind: "url", pattern: HTTP },
  ], secrets: ["token_id", "token_secret", "webhook_secret", "webhook_secret_previous"] },
  aws_ivs: { config: [
    { name: "region", kind: "text", required: true, pattern: "[a-z]{2}(-[a-z]+)+-[0-9]{1,2}" },
    { name: "latency_mode", kind: "select", choices: ["LOW", "NORMAL"] },
    { name: "channel_type", kind: "select", choices: ["STANDARD", "BASIC", "ADVANCED_SD", "ADVANCED_HD"] },
    { name: "recording_configuration_arn", kind: "text" },
    { name: "replay_base_url", kind: "url", pattern: HTTP },
    { name: "endpoint_url", kind: "url", pattern: HTTP },
  ], secrets: ["access_key_id", "secret_access_key", "ivs_webhook_secret", "ivs_webhook_secret_previous"] },
  restream: { config: [
    { name: "playback_url", kind: "url", required: true, pattern: HTTP },
    { name: "ingest_url", kind: "url", pattern: RTMP },
    { name: "client_id", kind: "text", maxlength: 200 },
    { name: "api_url", kind: "url", pattern: HTTP },
  ], secrets: ["stream_key", "access_token", "refresh_token", "client_secret"] },
  custom_rtmp: { config: [
    { name: "ingest_url", kind: "url", required: true, pattern: RTMP },
    { name: "playback_url_template", kind: "url", required: true, pattern: HTTP },
  ], secrets: [] },
};

// Help texts name the API's placeholders ({playback_id}, {items} …): t() leaves them as written.
const LITERALLY = new Proxy({}, { get: (_, name) => `{${String(name)}}` });

/** The first of `keys` that has a label (t answers an unknown key with the key itself). */
function label(keys, fallback) {
  return keys.map((key) => t(key, LITERALLY)).find((text, i) => text !== keys[i]) ?? fallback;
}

/** A field for a value the form has no description of: typed as the API answered it. */
function guessedSpec(name, value) {
  const kind = typeof value === "boolean" ? "checkbox" : typeof value === "number" ? "number" : "text";
  return { name, kind };
}

/**
 * One field: `{ node, name, read }`, where `read()` answers the value to send, `undefined` to
 * leave it out (an empty optional field, a secret not retyped) or `null` (a secret to remove).
 */
export function field(spec, value, { group, prefix }) {
  const id = `${prefix}-${spec.name}`;
  const text = label([`f.${group}.${spec.name}`, `f.${spec.name}`], spec.name);
  const help = el("p", { class: "help", id: `${id}-help` },
    label([`h.${group}.${spec.name}`, `h.${spec.name}`], ""), " ", el("code", { text: spec.name }));
  if (spec.kind === "secret") return secretField(spec, value, { id, text, help });
  if (spec.kind === "checkbox") {
    const box = el("input", { id, type: "checkbox", checked: value === true, "aria-describedby": help.id });
    return { name: spec.name, node: el("div", { class: "field" },
      el("label", { class: "row checkbox" }, box, text), help), read: () => box.checked };
  }
  const input = spec.kind === "select"
    ? el("select", { id, "aria-describedby": help.id, required: spec.required },
      spec.required ? "" : el("option", { value: "", text: t("settings.default") }),
      [...new Set([...spec.choices, ...(value ? [value] : [])])].map((choice) =>
        el("option", { value: choice, text: choice, selected: choice === value })))
    : el("input", { id, "aria-describedby": help.id, required: spec.required,
      value: value ?? "", ...inputType(spec) });
  const read = () => {
    if (spec.kind === "number") return Number.isNaN(input.valueAsNumber) ? undefined : input.valueAsNumber;
    return input.value.trim() || undefined;
  };
  return { name: spec.name, node: el("div", { class: "field" }, el("label", { for: id, text }), input, help), read };
}

function inputType(spec) {
  if (spec.kind === "number") {
    return { type: "number", min: spec.min, max: spec.max, step: spec.step ?? "any", inputmode: "decimal" };
  }
  // Not type=url: the browser's URL check refuses rtmp://… and {placeholders} the API accepts.
  return { type: "text", pattern: spec.pattern, maxlength: spec.maxlength ?? 2048, spellcheck: "false",
    autocomplete: "off", inputmode: spec.kind === "url" ? "url" : undefined };
}

/** A stored secret is answered masked ("••••••••" and maybe its last 4 characters): the field
 * says whether one is set and sends a value only when the admin types a new one. */
function secretField(spec, stored, { id, text, help }) {
  const end = (stored ?? "").replace(/^•+/, "");
  const state = el("span", { id: `${id}-state`, class: `secret-state${stored ? " set" : ""}`,
    text: !stored ? t("secret.unset") : end ? t("secret.set.end", { end }) : t("secret.set") });
  const input = el("input", { id, type: "password", autocomplete: "new-password", spellcheck: "false",
    maxlength: "4096", required: spec.required && !stored, "aria-describedby": `${state.id} ${help.id}`,
    placeholder: t(stored ? "secret.replace" : "secret.type") });
  const forget = spec.removable && stored
    ? el("input", { type: "checkbox", id: `${id}-forget`, "aria-label": `${t("secret.forget")} — ${text}`,
      onchange: (e) => { input.disabled = e.target.checked; } })
    : null;
  const read = () => (forget?.checked ? null : input.value.trim() || undefined);
  return { name: spec.name, read, node: el("div", { class: "field secret" },
    el("div", { class: "field-head" }, el("label", { for: id, text }), state,
      forget ? el("label", { class: "row checkbox forget" }, forget, t("secret.forget")) : ""),
    input, help) };
}

/** `{name: value}` of the fields whose value is to be sent. */
export function readAll(fields) {
  const values = {};
  for (const { name, read } of fields) {
    const value = read();
    if (value !== undefined) values[name] = value;
  }
  return values;
}

/** A status line beside a form's button: what the last save did. */
export function statusLine(id) {
  const line = el("p", { id, role: "status", class: "form-status" });
  line.say = (text, ok) => { line.textContent = text; line.className = `form-status ${ok ? "ok" : "error"}`; };
  return line;
}

/** The video platform new lives are created on, its settings and secret keys. */
export async function videoSettings() {
  const settings = await api("/api/live/settings");
  const platforms = [...new Set([...settings.supported_platforms, ...Object.keys(PLATFORMS)])];
  const form = el("form", { id: "settings-form" });
  const status = statusLine("settings-status");
  let fields = [];
  const render = (platform) => {
    const spec = PLATFORMS[platform] ?? { config: [], secrets: [] };
    // Only the chosen platform's config is stored; secrets are one set whatever the platform.
    const config = platform === settings.platform ? settings.config : {};
    const known = new Set(spec.config.map((f) => f.name));
    const extra = Object.keys(config).filter((name) => !known.has(name)).map((n) => guessedSpec(n, config[n]));
    const configFields = [...spec.config, ...extra].map((f) => field(f, config[f.name], { group: platform, prefix: "cfg" }));
    const secretFields = spec.secrets.map((name) => field({ name, kind: "secret", removable: true },
      settings.secrets[name], { group: platform, prefix: "secret" }));
    fields = [...configFields.map((f) => ({ ...f, part: "config" })), ...secretFields.map((f) => ({ ...f, part: "secrets" }))];
    form.replaceChildren(
      refusedPublish(settings.last_refused_publish) ?? "",
      el("label", { for: "platform", text: t("settings.platform") }),
      el("select", { id: "platform", name: "platform", "aria-describedby": "platform-help",
        onchange: (e) => render(e.target.value) },
      platforms.map((p) => el("option", { value: p, selected: p === platform,
        text: `${t(`platform.${p}`)}${settings.supported_platforms.includes(p) ? "" : ` ${t("settings.unsupported")}`}` }))),
      el("p", { class: "help", id: "platform-help", text: platform === settings.platform
        ? t(`h.platform.${platform}`) : t("settings.switch", { platform: t(`platform.${platform}`),
          current: t(`platform.${settings.platform}`) }) }),
      configFields.length ? el("fieldset", {}, el("legend", { text: t("settings.config") }), configFields.map((f) => f.node)) : "",
      secretFields.length ? el("fieldset", {}, el("legend", { text: t("settings.secretkeys") }),
        el("p", { class: "help", text: t("settings.secrets.help") }), secretFields.map((f) => f.node)) : "",
      el("p", {}, el("button", { type: "submit", class: "primary", text: t("settings.save") })), status);
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { platform: form.elements.platform.value,
      config: readAll(fields.filter((f) => f.part === "config")),
      secrets: readAll(fields.filter((f) => f.part === "secrets")) };
    try {
      Object.assign(settings, await api("/api/live/settings", { method: "PUT", body }));
      render(settings.platform);
      status.say(t("settings.saved"), true);
    } catch (error) {
      status.say(t("error.generic", { detail: error.detail }), false);
    }
  });
  render(settings.platform);
  return el("section", { id: "video-settings", "aria-labelledby": "video-heading" },
    el("h2", { id: "video-heading", text: t("settings.video") }), form);
}
