// The control room's offer panel: the live's code, live prices or a percentage, how long they
// hold after the live, whether the shop holds them yet, and the orders the live brought.

import { api } from "./api.js";
import { formatDate, formatPrice, t } from "./i18n.js";
import { el } from "./livestate.js";

const STATES = { synced: "offer.synced", pending: "offer.pending", failing: "offer.failing" };

// The server says why in English; the page says it in the reader's language, with the shop's
// own words after.
function problem(offer) {
  const failing = offer.coupons.find((c) => c.state === "failing");
  if (!failing) return null;
  return t(failing.active ? "offer.notinshop" : "offer.notwithdrawn", { reason: failing.last_error });
}

export function offerPanel(live, act) {
  const section = el("section", { id: "offer", "aria-labelledby": "offer-title" });
  let offer = null;
  let orders = [];

  const save = (form) => act(async () => {
    const body = {};
    const code = form.elements.code.value.trim();
    const percent = form.elements.percent_off.value.trim();
    if (code && code !== offer.code) body.code = code;
    body.percent_off = percent ? percent : null;
    body.window_h = Number(form.elements.window_h.value);
    offer = await api(`${live}/offer`, { method: "PUT", body });
    render();
  });

  const render = () => {
    if (!offer) return;
    const closed = offer.status === "closed";
    const form = el("form", { class: "fields", id: "offer-form" },
      el("label", {}, t("offer.code"),
        el("input", { name: "code", maxlength: "40", value: offer.code ?? "", placeholder: t("offer.code.auto"),
          disabled: closed })),
      el("label", {}, t("offer.percent"),
        el("input", { name: "percent_off", type: "number", min: "0.01", max: "100", step: "0.01",
          value: offer.percent_off ?? "", placeholder: t("offer.percent.none"), disabled: closed })),
      el("label", {}, t("offer.window"),
        el("input", { name: "window_h", type: "number", min: "0", max: "720", step: "1",
          value: String(Math.round(offer.window_h)), disabled: closed })),
      el("button", { type: "submit", class: "small", text: t("control.save"), disabled: closed }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      save(form);
    });
    const until = offer.closes_at ? t("offer.until", { when: formatDate(offer.closes_at) }) : "";
    section.replaceChildren(...[
      el("h2", { id: "offer-title", text: t("offer.title") }),
      el("p", { class: "row" },
        el("span", { class: `badge ${offer.status === "open" ? "live" : ""}`, id: "offer-status",
          text: t(`offer.status.${offer.status}`) }),
        el("span", { class: "muted", text: until })),
      problem(offer) ? el("p", { class: "notice", role: "alert", id: "offer-problem", text: problem(offer) }) : null,
      form,
      offer.coupons.length ? el("ul", { class: "plain", id: "offer-coupons" }, ...offer.coupons.map((c) =>
        el("li", { class: "row" },
          el("code", { text: c.code }),
          el("span", { class: "muted", text: t("offer.products", { n: c.products }) }),
          el("span", { class: `tag ${c.state}`, text: t(c.active ? STATES[c.state] : "offer.withdrawn") })))) : null,
      el("h3", { class: "offer-orders", text: t("offer.orders") }),
      orders.length ? el("ul", { class: "plain", id: "offer-orders" }, ...orders.map((o) =>
        el("li", { class: "row" },
          el("strong", { text: o.name || `#${o.order_id}` }),
          el("span", { text: formatPrice(o.credited_total, o.currency || "EUR") }),
          el("span", { class: "tag", text: t(`offer.via.${o.via}`) }),
          el("span", { class: "muted", text: formatDate(o.placed_at) }))))
        : el("p", { class: "muted", text: t("offer.noorders") })].filter(Boolean));
  };

  const refresh = async () => {
    try {
      offer = await api(`${live}/offer`);
      orders = (await api(`${live}/orders?limit=10`).catch(() => ({ items: [] }))).items ?? [];
      render();
    } catch {
      // the products service away: the panel keeps what it showed
    }
  };
  return { section, refresh };
}
