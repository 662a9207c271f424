// A live as the websocket tells it: the snapshot, then each event applied as the protocol says —
// what a page or a React hook renders. Messages are keyed by id, so one is never listed twice
// whatever a socket replays. Plain data: no DOM, so it runs in Node and React Native as well.

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
