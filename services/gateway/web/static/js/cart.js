// The viewer's cart: a live's (or a replay's) product added in one click, and the checkout link.

import { api, randomId } from "./api.js";
import { formatPrice, t } from "./i18n.js";
import { el } from "./livestate.js";

export class ViewerCart {
  /**
   * @param {string} sessionId  the viewer's session (the cart of an anonymous viewer)
   * @param {{box: HTMLElement, status: HTMLElement}} where  the checkout link goes in `box`,
   *   what happened is said in `status`
   */
  constructor(sessionId, { box, status }) {
    this.sessionId = sessionId;
    this.box = box;
    this.status = status;
    this.cart = null;
  }

  async add(streamId, product, button) {
    const label = button.textContent;
    button.disabled = true;
    button.textContent = t("product.adding");
    try {
      this.cart = await api("/api/live/cart/items", {
        method: "POST",
        headers: { "Idempotency-Key": randomId() }, // one per click: a retried request adds once
        body: { stream_id: streamId, product_id: product.product_id, quantity: 1, session_id: this.sessionId },
      });
      this.status.textContent = t("product.added");
      this.render();
    } catch (error) {
      this.status.textContent = t("cart.error", { detail: error.detail ?? error.message });
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  }

  async load() {
    try {
      this.cart = await api(`/api/live/cart?session_id=${encodeURIComponent(this.sessionId)}`);
      this.render();
    } catch {
      // no cart yet, or the products service is away: the button still works later
    }
  }

  render() {
    this.box.querySelector(".checkout")?.remove();
    const cart = this.cart;
    if (!cart?.lines?.length || !cart.checkout_url) return;
    const items = cart.lines.reduce((n, line) => n + line.quantity, 0);
    this.box.append(el("a", { class: "checkout button primary", href: cart.checkout_url,
      text: t("cart.checkout", { n: items, total: formatPrice(cart.total, cart.currency || "EUR") }) }));
  }
}
