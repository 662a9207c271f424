// Small pieces the admin pages share.

import { t } from "./i18n.js";
import { el } from "./livestate.js";

export function notice(text) {
  const box = document.getElementById("notice");
  box.textContent = text || "";
  box.hidden = !text;
}

/** A read-only value with a copy button (stream key, OBS server). */
export function copyField(label, value, id) {
  const button = el("button", { type: "button", class: "small", text: t("copy"),
    "aria-describedby": id,
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(value);
      } catch {
        const range = document.createRange(); // clipboard API refused (e.g. plain http)
        range.selectNodeContents(document.getElementById(id));
        getSelection().removeAllRanges();
        getSelection().addRange(range);
        document.execCommand("copy");
      }
      button.textContent = t("copied");
      setTimeout(() => { button.textContent = t("copy"); }, 2_000);
    } });
  return el("div", {},
    el("label", { for: id, text: label }),
    el("div", { class: "copy" }, el("code", { id, tabindex: "0", text: value ?? "—" }), button));
}
