// Sign-in for local use: a pasted JWT, or the dev sign-in (development and test only).
// The token stays in localStorage; the shop's own auth issues it in production (DESIGN.md §4).

import { onLanguageChange, t, translate } from "./i18n.js";

const KEY = "vitrine.token";
const listeners = new Set();

export function token() {
  return localStorage.getItem(KEY);
}

/** The token's claims, read without verifying (the gateway verifies); null when unreadable. */
export function claims(value = token()) {
  if (!value) return null;
  try {
    const part = value.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(
      Array.from(atob(part), (c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`).join(""),
    );
    const parsed = JSON.parse(json);
    if (parsed.exp && parsed.exp * 1000 < Date.now()) return null;
    return parsed;
  } catch {
    return null;
  }
}

export function user() {
  const c = claims();
  if (!c) return null;
  const meta = c.user_metadata || {};
  const name = meta.name || meta.full_name || (c.email ? c.email.split("@")[0] : "viewer");
  return { id: c.sub, name, role: c.app_metadata?.role || null };
}

export function setToken(value) {
  if (value) localStorage.setItem(KEY, value);
  else localStorage.removeItem(KEY);
  for (const listener of listeners) listener(user());
}

export function onAuthChange(listener) {
  listeners.add(listener);
}

/** Whether the page was served with the dev sign-in (outside production). */
export function devSignInAvailable() {
  return document.body.dataset.devSignIn === "true";
}

/** The header's sign-in area: who is signed in, and a dialog to sign in or out. */
export function mountSignIn(container) {
  const dialog = document.getElementById("signin-dialog");
  const status = container.querySelector("[data-role=who]");
  const button = container.querySelector("[data-role=signin]");
  const render = () => {
    const who = user();
    status.textContent = who ? t("auth.as", { name: who.name }) : "";
    button.textContent = who ? t("auth.signout") : t("auth.signin");
  };
  button.addEventListener("click", () => {
    if (user()) setToken(null);
    else dialog.showModal();
  });
  const pasted = dialog.querySelector("form[data-role=paste]");
  pasted.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = pasted.elements.token.value.trim();
    const error = pasted.querySelector("[role=alert]");
    if (!claims(value)) {
      error.textContent = t("auth.invalid");
      return;
    }
    error.textContent = "";
    pasted.reset();
    setToken(value);
    dialog.close();
  });
  const dev = dialog.querySelector("form[data-role=dev]");
  dev.hidden = !devSignInAvailable();
  dev.addEventListener("submit", async (event) => {
    event.preventDefault();
    const role = dev.elements.role.value || null;
    const error = dev.querySelector("[role=alert]");
    try {
      const response = await fetch("/dev/sign-in", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: dev.elements.name.value.trim() || "Dev", role }),
      });
      if (!response.ok) throw new Error(`${response.status}`);
      setToken((await response.json()).token);
      error.textContent = "";
      dialog.close();
    } catch (failure) {
      error.textContent = t("error.generic", { detail: failure.message });
    }
  });
  dialog.querySelector("[data-role=close]").addEventListener("click", () => dialog.close());
  onAuthChange(render);
  onLanguageChange(render);
  translate(dialog);
  render();
  return { render };
}
