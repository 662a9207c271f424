import type { components, paths } from "./generated/openapi.js";
import type { LiveWatch, WatchOptions } from "./watch.js";

type Schemas = components["schemas"];
type Method = "get" | "post" | "put" | "delete";
type Operation<P extends keyof paths, M extends Method> = paths[P][M];
type JsonOf<R> = R extends { content: { "application/json": infer T } } ? T : unknown;
/** The JSON that route `P` answers to `M` with `status`, as the gateway's OpenAPI documents it. */
export type Answer<P extends keyof paths, M extends Method, S extends number = 200> =
  Operation<P, M> extends { responses: infer R } ? (S extends keyof R ? JsonOf<R[S]> : never) : never;
/** The JSON body route `P` takes for `M`. */
export type BodyOf<P extends keyof paths, M extends Method> =
  Operation<P, M> extends { requestBody?: { content: { "application/json": infer B } } } ? B : never;
/** The query parameters route `P` takes for `M`. */
export type QueryOf<P extends keyof paths, M extends Method> =
  Operation<P, M> extends { parameters: { query?: infer Q } } ? ([Q] extends [never] ? Query : Q) : Query;

type Query = Record<string, string | number | boolean | null | undefined>;
type LiveRoute = "/api/live/streams/{stream_id}";
type LiveProductRoute = "/api/live/streams/{stream_id}/products/{product_id}";
type CartLineRoute = "/api/live/cart/items/{stream_id}/{product_id}";

/** Every non-2xx answer, in Vitrine's one shape `{"detail": …}`; status 0: no answer at all. */
export declare class VitrineError extends Error {
  constructor(status: number, detail: unknown, extra?: { retryAfter?: number; body?: unknown });
  readonly name: "VitrineError";
  /** 400 401 403 404 409 413 422 429 502 503 504, or 0 for a network failure. */
  readonly status: number;
  /** A sentence, or for a 422 the list of the inputs not valid. */
  readonly detail: Schemas["ErrorBody"]["detail"];
  /** Seconds to wait before asking again (429, 503), from Retry-After. */
  readonly retryAfter: number | undefined;
  readonly body: unknown;
}

export declare function describe(detail: unknown): string;

export interface ClientOptions {
  /** The gateway, e.g. "https://shop.example"; "" (default) in a page the gateway serves. */
  baseUrl?: string;
  /** The JWT, or a function giving the current one; null: anonymous. */
  token?: string | null | (() => string | null | undefined);
  fetch?: typeof fetch;
}

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** The one status that means success (another 2xx throws too). */
  expect?: number;
}

export declare class VitrineClient {
  constructor(options?: ClientOptions);
  readonly baseUrl: string;
  token: ClientOptions["token"];
  currentToken(): string | null | undefined;
  request<T = unknown>(method: string, route: string, options?: RequestOptions): Promise<T>;

  listLives(query?: QueryOf<"/api/live/streams", "get">): Promise<Answer<"/api/live/streams", "get">>;
  getLive(streamId: string): Promise<Answer<LiveRoute, "get">>;
  createLive(body: BodyOf<"/api/live/streams", "post">): Promise<Answer<"/api/live/streams", "post", 201>>;
  updateLive(streamId: string, body: BodyOf<LiveRoute, "put">): Promise<Answer<LiveRoute, "put">>;
  deleteLive(streamId: string): Promise<null>;
  startLive(streamId: string): Promise<Answer<`${LiveRoute}/start`, "post">>;
  endLive(streamId: string): Promise<Answer<`${LiveRoute}/end`, "post">>;
  getReplay(streamId: string): Promise<Answer<`${LiveRoute}/replay`, "get">>;

  liveProducts(streamId: string): Promise<Answer<`${LiveRoute}/products`, "get">>;
  featuredProduct(streamId: string): Promise<Answer<`${LiveRoute}/featured`, "get">>;
  putLiveProduct(streamId: string, body: BodyOf<`${LiveRoute}/products`, "post">): Promise<Answer<`${LiveRoute}/products`, "post">>;
  featureProduct(streamId: string, productId: string): Promise<Answer<`${LiveProductRoute}/feature`, "post">>;
  unfeature(streamId: string): Promise<null>;
  removeLiveProduct(streamId: string, productId: string): Promise<Answer<LiveProductRoute, "delete">>;
  clickProduct(streamId: string, productId: string, sessionId: string): Promise<Answer<`${LiveProductRoute}/click`, "post">>;

  chatHistory(streamId: string, page?: { cursor?: string; limit?: number }): Promise<Answer<"/api/live/chat", "get">>;
  /** The message (201), or held for a moderator (202): both the message. */
  postChat(streamId: string, message: string): Promise<Answer<"/api/live/chat", "post", 201>>;

  getCart(sessionId?: string): Promise<Answer<"/api/live/cart", "get">>;
  addToCart(body: BodyOf<"/api/live/cart/items", "post">): Promise<Answer<"/api/live/cart/items", "post", 201>>;
  setCartItem(body: BodyOf<"/api/live/cart/items", "put">): Promise<Answer<"/api/live/cart/items", "put">>;
  removeFromCart(streamId: string, productId: string, sessionId?: string): Promise<Answer<CartLineRoute, "delete">>;
  claimCart(body: BodyOf<"/api/live/cart/claim", "post">): Promise<Answer<"/api/live/cart/claim", "post">>;

  startWatching(body: BodyOf<"/api/live/viewers", "post">): Promise<Answer<"/api/live/viewers", "post", 201>>;
  stopWatching(body: BodyOf<"/api/live/viewers", "put">): Promise<Answer<"/api/live/viewers", "put">>;

  remindMe(streamId: string, body: BodyOf<`${LiveRoute}/reminders`, "post">): Promise<Answer<`${LiveRoute}/reminders`, "post", 201>>;
  followShop(body: BodyOf<"/api/live/reminders", "post">): Promise<Answer<"/api/live/reminders", "post", 201>>;
  unsubscribe(token: string): Promise<null>;
  pushPublicKey(): Promise<Answer<"/api/live/push/public-key", "get">>;

  watchLive(streamId: string, options?: WatchOptions): LiveWatch;
}

export declare function createClient(options?: ClientOptions): VitrineClient;

// Only what is declared `export` above is the module's (the helper types stay private).
export {};
