// A live as the websocket tells it: the snapshot, then each event applied exactly as the protocol
// says. Shared by the viewer page and the admin's control room. Messages are keyed by id, so a
// message can never be listed twice whatever the socket replays.

const MAX_MESSAGES = 200;

export class LiveState {
  constructor() {
    this.stream = null;
    this.products = []; // ordered by position
    this.featured = null;
    this.pinned = new Map(); // id → message
    this.messages = new Map(); // id → message, oldest first
    this.viewers = { current: 0, peak: 0, total: 0, unique: 0 };
    this.deleted = false;
  }

  applySnapshot(data) {
    this.stream = data.stream;
    this.products = sortProducts(data.products || []);
    this.featured = data.featured_product || null;
    this.pinned = new Map((data.pinned_messages || []).map((m) => [m.id, m]));
    this.messages = new Map();
    for (const message of data.recent_messages || []) this.messages.set(message.id, message);
    this.viewers = { ...this.viewers, ...(data.viewers || {}) };
  }

  /** Apply one event; returns which parts changed ("stream", "products", "chat", "viewers"). */
  apply(frame) {
    const data = frame.data || {};
    switch (frame.type) {
      case "stream.created":
      case "stream.updated":
      case "stream.started":
      case "stream.ended":
        this.stream = data.stream;
        return ["stream"];
      case "stream.deleted":
        this.deleted = true;
        return ["stream"];
      case "product.added":
      case "product.updated":
        this.upsert(data.product);
        if (data.product.is_featured) this.featured = data.product;
        else if (this.featured?.product_id === data.product.product_id) this.featured = null;
        return ["products"];
      case "product.removed":
        this.products = this.products.filter((p) => p.product_id !== data.product_id);
        if (this.featured?.product_id === data.product_id) this.featured = null;
        return ["products"];
      case "product.featured":
        for (const product of this.products) product.is_featured = false;
        this.upsert({ ...data.product, is_featured: true });
        this.featured = { ...data.product, is_featured: true };
        return ["products"];
      case "product.unfeatured":
        for (const product of this.products) {
          if (product.product_id === data.product_id) product.is_featured = false;
        }
        if (this.featured?.product_id === data.product_id) this.featured = null;
        return ["products"];
      case "chat.posted":
        if (!this.messages.has(data.message.id)) {
          this.messages.set(data.message.id, data.message);
          while (this.messages.size > MAX_MESSAGES) {
            this.messages.delete(this.messages.keys().next().value);
          }
        }
        return ["chat"];
      case "chat.deleted":
        this.messages.delete(data.message_id);
        this.pinned.delete(data.message_id);
        return ["chat"];
      case "chat.pinned":
        this.pinned.set(data.message.id, data.message);
        if (this.messages.has(data.message.id)) {
          this.messages.set(data.message.id, { ...this.messages.get(data.message.id), is_pinned: true });
        }
        return ["chat"];
      case "chat.unpinned":
        this.pinned.delete(data.message_id);
        if (this.messages.has(data.message_id)) {
          this.messages.set(data.message_id, { ...this.messages.get(data.message_id), is_pinned: false });
        }
        return ["chat"];
      case "viewers.updated":
        this.viewers = { ...this.viewers, ...data };
        return ["viewers"];
      default:
        return []; // product.clicked, cart.added, chat.user_banned …: nothing on screen changes
    }
  }

  upsert(product) {
    const others = this.products.filter((p) => p.product_id !== product.product_id);
    this.products = sortProducts([...others, product]);
  }
}

function sortProducts(products) {
  return [...products].sort((a, b) => (a.position ?? 0) - (b.position ?? 0));
}

/** A DOM element: `el("li", {class: "x", text: "…"}, child …)`; text is always text, never HTML. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}
