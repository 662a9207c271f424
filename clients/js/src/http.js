// The gateway's REST API (DESIGN.md §3): JSON in and out, the bearer token, and Vitrine's one
// error shape `{"detail": …}` turned into a VitrineError. Types: http.d.ts, from the OpenAPI.

import { watchLive } from "./watch.js";

export class VitrineError extends Error {
  /** `status` 0: the gateway was not reached (network). `detail`: the body's, as it came. */
  constructor(status, detail, { retryAfter, body } = {}) {
    super(`${status || "network"}: ${describe(detail)}`);
    this.name = "VitrineError";
    this.status = status;
    this.detail = detail;
    this.retryAfter = retryAfter; // seconds, from Retry-After (429, 503)
    this.body = body;
  }
}

/** A readable sentence from a `detail`: a string, or FastAPI's list of validation errors. */
export function describe(detail) {
  if (Array.isArray(detail)) {
    return detail.map((e) => `${(e.loc || []).slice(1).join(".")}: ${e.msg}`).join("; ");
  }
  return typeof detail === "string" ? detail : JSON.stringify(detail);
}

const path = (strings, ...values) =>
  strings.reduce((out, text, i) => out + text + (i < values.length ? encodeURIComponent(values[i]) : ""), "");

export class VitrineClient {
  /** `baseUrl`: the gateway ("" or omitted in a page it serves); `token`: a JWT, or a function
   * giving the current one (null: anonymous); `fetch`: another implementation than the platform's. */
  constructor({ baseUrl = "", token = null, fetch: fetchImpl } = {}) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.token = token;
    this.fetch = fetchImpl ?? ((...args) => globalThis.fetch(...args));
  }

  currentToken() {
    return typeof this.token === "function" ? this.token() : this.token;
  }

  /** Any route: the parsed JSON answer (null when empty); a VitrineError for any other status
   * than 2xx, or than `expect` when given. */
  async request(method, route, { query, body, headers = {}, signal, expect } = {}) {
    const sent = { Accept: "application/json", ...headers };
    const bearer = this.currentToken();
    if (bearer) sent.Authorization = `Bearer ${bearer}`;
    if (body !== undefined) sent["Content-Type"] = "application/json";
    let response;
    try {
      response = await this.fetch(this.baseUrl + route + queryString(query), {
        method,
        headers: sent,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (error) {
      if (error?.name === "AbortError") throw error;
      throw new VitrineError(0, error?.message || "network");
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = text; // a calendar, a CSV: not JSON
    }
    if (!response.ok || (expect !== undefined && response.status !== expect)) {
      const retryAfter = Number(response.headers.get("Retry-After")) || undefined;
      throw new VitrineError(response.status, data?.detail ?? response.statusText, { retryAfter, body: data });
    }
    return data;
  }

  // Lives -------------------------------------------------------------------------------------
  listLives(query) { return this.request("GET", "/api/live/streams", { query }); }
  getLive(streamId) { return this.request("GET", path`/api/live/streams/${streamId}`); }
  createLive(body) { return this.request("POST", "/api/live/streams", { body, expect: 201 }); }
  updateLive(streamId, body) { return this.request("PUT", path`/api/live/streams/${streamId}`, { body }); }
  deleteLive(streamId) { return this.request("DELETE", path`/api/live/streams/${streamId}`); }
  startLive(streamId) { return this.request("POST", path`/api/live/streams/${streamId}/start`); }
  endLive(streamId) { return this.request("POST", path`/api/live/streams/${streamId}/end`); }
  getReplay(streamId) { return this.request("GET", path`/api/live/streams/${streamId}/replay`); }

  // Products of a live ------------------------------------------------------------------------
  liveProducts(streamId) { return this.request("GET", path`/api/live/streams/${streamId}/products`); }
  featuredProduct(streamId) { return this.request("GET", path`/api/live/streams/${streamId}/featured`); }
  putLiveProduct(streamId, body) {
    return this.request("POST", path`/api/live/streams/${streamId}/products`, { body });
  }
  featureProduct(streamId, productId) {
    return this.request("POST", path`/api/live/streams/${streamId}/products/${productId}/feature`);
  }
  unfeature(streamId) { return this.request("DELETE", path`/api/live/streams/${streamId}/featured`); }
  removeLiveProduct(streamId, productId) {
    return this.request("DELETE", path`/api/live/streams/${streamId}/products/${productId}`);
  }
  /** A viewer opened the product (analytics); `sessionId`: the viewer's. */
  clickProduct(streamId, productId, sessionId) {
    return this.request("POST", path`/api/live/streams/${streamId}/products/${productId}/click`,
      { body: { session_id: sessionId } });
  }

  // Chat --------------------------------------------------------------------------------------
  chatHistory(streamId, { cursor, limit } = {}) {
    return this.request("GET", "/api/live/chat", { query: { stream_id: streamId, cursor, limit } });
  }
  /** Post as the signed-in user: the message (201), or held for a moderator (202). */
  postChat(streamId, message) {
    return this.request("POST", "/api/live/chat", { body: { stream_id: streamId, message } });
  }

  // Cart and checkout: the signed-in user's cart, else the anonymous session's ----------------
  getCart(sessionId) { return this.request("GET", "/api/live/cart", { query: { session_id: sessionId } }); }
  addToCart(body) { return this.request("POST", "/api/live/cart/items", { body }); }
  setCartItem(body) { return this.request("PUT", "/api/live/cart/items", { body }); }
  removeFromCart(streamId, productId, sessionId) {
    return this.request("DELETE", path`/api/live/cart/items/${streamId}/${productId}`,
      { query: { session_id: sessionId } });
  }
  /** Signed in: take over what the anonymous session put in its cart. */
  claimCart(body) { return this.request("POST", "/api/live/cart/claim", { body }); }

  // Viewers without a websocket (a native player) -----------------------------------------------
  startWatching(body) { return this.request("POST", "/api/live/viewers", { body }); }
  stopWatching(body) { return this.request("PUT", "/api/live/viewers", { body }); }

  // Reminders -----------------------------------------------------------------------------------
  remindMe(streamId, body) { return this.request("POST", path`/api/live/streams/${streamId}/reminders`, { body }); }
  followShop(body) { return this.request("POST", "/api/live/reminders", { body }); }
  unsubscribe(token) { return this.request("DELETE", path`/api/live/reminders/${token}`); }
  pushPublicKey() { return this.request("GET", "/api/live/push/public-key"); }

  // Real time -----------------------------------------------------------------------------------
  /** watchLive() on this gateway, with this client's token unless the options give one. */
  watchLive(streamId, options = {}) {
    return watchLive(streamId, { baseUrl: this.baseUrl || undefined, token: () => this.currentToken(), ...options });
  }
}

export function createClient(options) {
  return new VitrineClient(options);
}

function queryString(query) {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null) params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}
