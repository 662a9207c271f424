// The control room's reminders panel: how many will be reminded (counts only: addresses stay
// with the notifications service), the lead time, and a test of the reminder sent to one address.

import { api } from "./api.js";
import { currentLang } from "./i18n.js";
import { el } from "./livestate.js";

const LABELS = {
  fr: {
    title: "Rappels", subscribers: "Abonnés du live", followers: "Abonnés de la boutique",
    pending: "En attente de confirmation", sent: "Envoyés", lead: "Rappel (minutes avant)",
    save: "Enregistrer", test: "Envoyer un test à", send: "Envoyer le test",
    tested: "Test envoyé à {email}.", untested: "Le serveur d'e-mail a refusé le test : {reason}",
  },
  en: {
    title: "Reminders", subscribers: "Subscribed to this live", followers: "Following the shop",
    pending: "Awaiting confirmation", sent: "Sent", lead: "Reminder (minutes before)",
    save: "Save", test: "Send a test to", send: "Send the test", tested: "Test sent to {email}.",
    untested: "The mail server refused the test: {reason}",
  },
};

function say(key, values = {}) {
  const text = (LABELS[currentLang()] || LABELS.en)[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

export function remindersPanel(live, act) {
  const section = el("section", { id: "reminders-admin", "aria-labelledby": "reminders-admin-title" });
  let counts = null;
  let note = "";

  const render = () => {
    if (!counts) return;
    const sent = Object.values(counts.sent).reduce((a, b) => a + b, 0);
    const figure = (label, value, id) => el("div", { class: "figure" },
      el("dt", { text: label }), el("dd", { id, text: String(value) }));
    const lead = el("form", { class: "row", id: "lead-form" },
      el("label", { for: "lead-minutes", text: say("lead") }),
      el("input", { id: "lead-minutes", type: "number", min: "1", max: "10080",
        value: String(counts.lead_minutes) }),
      el("button", { type: "submit", class: "small", text: say("save") }));
    lead.addEventListener("submit", (event) => {
      event.preventDefault();
      act(async () => {
        counts = await api(`${live}/reminder-settings`, {
          method: "PUT", body: { lead_minutes: Number(lead.elements[0].value) },
        });
        render();
      });
    });
    const test = el("form", { class: "row", id: "test-form" },
      el("label", { for: "test-email", text: say("test") }),
      el("input", { id: "test-email", type: "email", required: true, maxlength: "254" }),
      el("button", { type: "submit", class: "small", text: say("send") }));
    test.addEventListener("submit", (event) => {
      event.preventDefault();
      const email = test.elements[0].value.trim();
      act(async () => {
        const result = await api(`${live}/reminders/test`, {
          method: "POST", body: { email, language: currentLang(),
            time_zone: Intl.DateTimeFormat().resolvedOptions().timeZone || "Europe/Paris" },
        });
        note = result.sent ? say("tested", { email }) : say("untested", { reason: result.reason });
        render();
      });
    });
    section.replaceChildren(
      el("h2", { id: "reminders-admin-title", text: say("title") }),
      el("dl", { class: "figures" },
        figure(say("subscribers"), counts.subscribers, "rem-subscribers"),
        figure(say("followers"), counts.shop_followers, "rem-followers"),
        figure(say("pending"), counts.pending_confirmation, "rem-pending"),
        figure(say("sent"), sent, "rem-sent")),
      lead, test,
      el("p", { class: "help", id: "test-note", role: "status", text: note }));
  };

  const refresh = async () => {
    try {
      counts = await api(`${live}/reminders`);
    } catch {
      counts = null; // no notifications service (404) or away: the panel stays empty
      section.replaceChildren();
      return;
    }
    if (!section.contains(document.activeElement)) render(); // never under the admin's typing
  };
  return { section, refresh };
}
