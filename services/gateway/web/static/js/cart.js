// The viewer's cart: a live's (or a replay's) product added in one click, the header's cart button
// with its count, and the drawer (lines, quantities, total, checkout link). Until the viewer signs
// in the cart is the session's (its id kept in local storage, so it survives reloads); on sign-in
// it is claimed into the user's.

import { ApiError, api, randomId } from "./api.js";
import { token } from "./auth.js";
import { formatPrice, t } from "./i18n.js";
import { el } from "./livestate.js";

const QUANTITY_MAX = 99;
const NOTE_MS = { ok: 4_000, error: 8_000 };
// Set while the session's cart holds something: signing in then claims it into the user's.
const UNCLAIMED = "vitrine.cart.unclaimed";

/** A sentence from a failed call: the server's `detail`, in the page's language when known. */
function reason(error) {
  if (!(error instanceof ApiError)) return String(error?.message ?? error);
  if (error.status === 0) return t("error.network");
  const detail = String(error.detail ?? error.message);
  if (detail === "sold out") return t("cart.soldout");
  const short = detail.match(/^only (\d+) left in stock(?:, (\d+) already in your cart)?$/);
  if (short) {
    return t("cart.only", { n: short[1] }) + (short[2] ? t("cart.held", { n: short[2] }) : "");
  }
  return detail;
}

const keyOf = (line) => `${line.stream_id}:${line.product_id}`;

// Carts repriced by a live's start or close are asked again spread over this long.
const RELOAD_SPREAD_MS = 3000;

export class ViewerCart {
  /**
   * @param {string} sessionId  the viewer's session (the cart of an anonymous viewer)
   * @param {{button: HTMLElement, drawer: HTMLDialogElement, announce: HTMLElement,
   *   onChange: () => void}} where  the header's button, the drawer, a live region for what
   *   happened, and what to call when the product cards must show a change (adding, added, error)
   */
  constructor(sessionId, { button, drawer, announce, onChange }) {
    this.sessionId = sessionId;
    this.button = button;
    this.drawer = drawer;
    this.announce = announce;
    this.onChange = onChange;
    this.cart = null;
    this.reloading = null; // a reload asked for by events, on its way
    this.adding = new Set(); // product ids on their way into the cart
    this.notes = new Map(); // product id → {text, ok, where}: what the card clicked says
    this.timers = new Map();
    this.changing = new Set(); // lines whose change is on its way: more clicks wait for it
    this.$ = (id) => drawer.querySelector(`#${id}`);
    button.addEventListener("click", () => this.open());
    drawer.querySelector("[data-role=close]").addEventListener("click", () => this.close());
    drawer.addEventListener("click", (event) => {
      if (event.target === drawer) this.close(); // a click on the backdrop
    });
    drawer.addEventListener("close", () => {
      button.setAttribute("aria-expanded", "false");
      button.focus();
    });
    this.render();
  }

  open() {
    this.render();
    this.drawer.showModal(); // focus moves in (the close button), Escape closes
    this.button.setAttribute("aria-expanded", "true");
  }

  close() {
    this.drawer.close();
  }

  /** The cart as the server has it: the session's claimed first if the viewer just signed in. */
  async load() {
    try {
      if (token() && localStorage.getItem(UNCLAIMED) === this.sessionId) await this.claim();
      else this.show(await api(this.cartPath()));
    } catch {
      // the products service is away: the cart shows what it last knew, the buttons still work
    }
  }

  async claim() {
    try {
      this.show(await api("/api/live/cart/claim", {
        method: "POST", body: { session_id: this.sessionId },
      }));
      localStorage.removeItem(UNCLAIMED);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 409) throw error; // try again next time
      localStorage.removeItem(UNCLAIMED); // refused (another currency): said once, both carts kept
      this.say(t("cart.claim.error", { detail: reason(error) }));
      this.show(await api(this.cartPath()));
    }
  }

  cartPath() {
    return `/api/live/cart?session_id=${encodeURIComponent(this.sessionId)}`;
  }

  /** Put one of `product` in the cart; the card clicked (`where`) says "added" only once the
   * server has. */
  async add(streamId, product, where) {
    const id = product.product_id;
    if (this.adding.has(id)) return;
    this.adding.add(id);
    this.forget(id);
    this.onChange();
    try {
      const cart = await api("/api/live/cart/items", {
        method: "POST",
        expect: 201,
        headers: { "Idempotency-Key": randomId() }, // one per click: a retried request adds once
        body: { stream_id: streamId, product_id: id, quantity: 1, session_id: this.sessionId },
      });
      this.show(cart);
      this.note(id, where, t("product.added"), true);
    } catch (error) {
      this.note(id, where, t("cart.error", { detail: reason(error) }), false);
    } finally {
      this.adding.delete(id);
      this.onChange();
    }
  }

  /** A line's new quantity (0: removed), from the drawer. */
  async change(line, quantity) {
    const key = keyOf(line);
    if (this.changing.has(key)) return;
    this.changing.add(key);
    const session = encodeURIComponent(this.sessionId);
    try {
      const cart = quantity === 0
        ? await api(`/api/live/cart/items/${line.stream_id}/${line.product_id}?session_id=${session}`,
          { method: "DELETE" })
        : await api("/api/live/cart/items", {
          method: "PUT",
          headers: { "Idempotency-Key": randomId() },
          body: { stream_id: line.stream_id, product_id: line.product_id, quantity,
            session_id: this.sessionId },
        });
      this.say("");
      this.show(cart);
    } catch (error) {
      this.say(t("cart.change.error", { detail: reason(error) }));
      if (error instanceof ApiError && error.status === 404) await this.load(); // changed elsewhere
    } finally {
      this.changing.delete(key);
    }
  }

  /** A product changed in the live (`product.updated`): its lines show the new stock, and the
   * cart is asked again when the price to pay in that live changed (`payable`: the card's price
   * to pay now, the live price once the live has started and while its offer holds). */
  productChanged(product, { streamId, payable }) {
    const lines = this.cart?.lines?.filter((line) => line.product_id === product.product_id) ?? [];
    if (!lines.length) return;
    for (const line of lines) line.stock = product.stock ?? null;
    this.render();
    const repriced = (line) => line.stream_id === streamId && Number(line.unit_price) !== Number(payable);
    if (lines.some(repriced)) this.reloadSoon();
  }

  /** Ask for the cart again within a few seconds, once however many events asked: a live's
   * start or close reprices every viewer's cart at once, and they need not all ask at once. */
  reloadSoon() {
    if (this.reloading) return;
    this.reloading = setTimeout(async () => {
      try {
        await this.load();
      } finally {
        this.reloading = null;
      }
    }, 200 + Math.random() * RELOAD_SPREAD_MS);
  }

  show(cart) {
    this.cart = cart;
    if (!token()) {
      if (cart.items > 0) localStorage.setItem(UNCLAIMED, this.sessionId);
      else localStorage.removeItem(UNCLAIMED);
    }
    this.render();
  }

  note(productId, where, text, ok) {
    this.notes.set(productId, { text, ok, where });
    this.announce.textContent = text;
    clearTimeout(this.timers.get(productId));
    this.timers.set(productId, setTimeout(() => {
      this.forget(productId);
      this.onChange();
    }, ok ? NOTE_MS.ok : NOTE_MS.error));
  }

  forget(productId) {
    this.notes.delete(productId);
    clearTimeout(this.timers.get(productId));
  }

  say(text) {
    this.$("cart-message").textContent = text;
  }

  render() {
    const cart = this.cart;
    const items = cart?.items ?? 0;
    const count = this.button.querySelector(".cart-count");
    count.textContent = String(items);
    count.hidden = items === 0;
    this.button.setAttribute("aria-label", t("cart.open.label", { n: items }));
    this.$("cart-items").textContent = items ? t("cart.items", { n: items }) : "";

    // The line being changed keeps the focus, though its buttons are made again.
    const focused = this.drawer.contains(document.activeElement)
      ? document.activeElement.dataset.focus : undefined;
    const lines = cart?.lines ?? [];
    this.$("cart-lines").replaceChildren(...lines.map((line) => this.lineItem(line, lines)));
    this.$("cart-empty").hidden = lines.length > 0;
    this.$("cart-foot").hidden = lines.length === 0;
    if (lines.length) {
      this.$("cart-total").textContent = formatPrice(cart.total, cart.currency);
      const link = this.$("cart-checkout");
      link.hidden = !cart.checkout_url;
      if (cart.checkout_url) link.href = cart.checkout_url;
      else link.removeAttribute("href");
      this.$("cart-checkout-off").hidden = Boolean(cart.checkout_url);
      this.$("cart-nocheckout").hidden = Boolean(cart.checkout_url);
    }
    if (focused) this.refocus(focused);
  }

  refocus(key) {
    const line = key.slice(0, key.lastIndexOf(":"));
    const same = this.drawer.querySelector(`[data-focus="${CSS.escape(key)}"]:not(:disabled)`);
    const near = this.drawer.querySelector(`[data-line="${CSS.escape(line)}"] button:not(:disabled)`);
    (same || near || this.drawer.querySelector("[data-role=close]")).focus();
  }

  lineItem(line, lines) {
    const key = keyOf(line);
    const name = line.name;
    const held = lines.filter((l) => l.product_id === line.product_id)
      .reduce((n, l) => n + l.quantity, 0);
    const atMost = line.stock === null || line.stock === undefined ? QUANTITY_MAX
      : Math.min(QUANTITY_MAX, line.quantity + line.stock - held);
    const struck = line.regular_price !== null && line.regular_price !== undefined
      && Number(line.regular_price) !== Number(line.unit_price);
    const price = formatPrice(line.unit_price, line.currency);
    return el("li", { class: "cart-line", dataset: { line: key } },
      line.image_url
        ? el("img", { class: "cart-line-image", src: line.image_url, alt: "", loading: "lazy" })
        : el("span", { class: "cart-line-image", "aria-hidden": "true" }),
      el("div", { class: "cart-line-main" },
        el("p", { class: "cart-line-name", text: name }),
        el("p", { class: "price" },
          struck ? el("span", { class: "visually-hidden", text: t("cart.regular") }) : null,
          struck ? el("del", { text: formatPrice(line.regular_price, line.currency) }) : null,
          struck ? el("span", { class: "visually-hidden", text: t("cart.now") }) : null,
          el("strong", { text: price })),
        line.stock !== null && line.stock !== undefined && line.stock <= 5
          ? el("p", { class: "stock", text: line.stock > 0 ? t("product.left", { n: line.stock })
            : t("product.soldout") })
          : null,
        el("div", { class: "cart-line-actions" },
          el("div", { class: "stepper", role: "group", "aria-label": t("cart.quantity", { name }) },
            el("button", { type: "button", text: "−", "aria-label": t("cart.less", { name }),
              disabled: line.quantity <= 1, dataset: { focus: `${key}:less` },
              onclick: () => this.change(line, line.quantity - 1) }),
            el("output", { text: String(line.quantity), "aria-label": t("cart.quantity", { name }) }),
            el("button", { type: "button", text: "+", "aria-label": t("cart.more", { name }),
              disabled: line.quantity >= atMost, dataset: { focus: `${key}:more` },
              onclick: () => this.change(line, line.quantity + 1) })),
          el("button", { type: "button", class: "link remove", text: t("cart.remove"),
            "aria-label": t("cart.remove.label", { name }), dataset: { focus: `${key}:remove` },
            onclick: () => this.change(line, 0) }))),
      el("strong", { class: "cart-line-total",
        text: formatPrice(Number(line.unit_price) * line.quantity, line.currency) }));
  }
}
