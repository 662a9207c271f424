import type {
  ChatMessage, EventPayloads, LiveProduct, StreamView, ViewersUpdated,
} from "./generated/events.js";

/** What the gateway's socket relays to viewers (it keeps viewer.*, cart.* and clicks to itself). */
export type ViewerEventType = Exclude<keyof EventPayloads, `viewer.${string}` | "cart.added" | "product.clicked">;

/** One event frame: `seq` is the event's JetStream sequence, increasing within a live. */
export type LiveEvent = {
  [T in ViewerEventType]: {
    seq: number;
    type: T;
    stream_id: string;
    occurred_at: string;
    data: EventPayloads[T];
  };
}[ViewerEventType];

/** The first frame's `data`: the live as of the snapshot's seq. */
export interface LiveSnapshot {
  stream: StreamView & Record<string, unknown>;
  products: LiveProduct[];
  featured_product: LiveProduct | null;
  pinned_messages: ChatMessage[];
  recent_messages: ChatMessage[];
  viewers: Partial<ViewersUpdated>;
}

/** Frames without a seq, answering this viewer alone. */
export type ServerMessage =
  | { type: "error"; data: { status: number; detail: string; retry_after?: number } }
  | { type: "chat.held"; data: ChatMessage };

/**
 * - `connecting`: the first attempt, nothing received yet;
 * - `live`: in, events flowing (after the snapshot, or a resume the gateway accepted);
 * - `reconnecting`: dropped (network, gateway restart, 1013 "try again later"), retrying after
 *   `detail.delayMs` with `since=<last seq>`;
 * - `offline`: the same while the device says it is offline; the `online` event retries at once;
 * - `stopped`: the gateway said not to come back — 4400 bad request, 4401 token refused,
 *   4404 no such live (or one viewers may no longer join: it ended); `reconnectNow()` tries again;
 * - `closed`: `close()` was called.
 */
export type WatchState = "connecting" | "live" | "reconnecting" | "offline" | "stopped" | "closed";

export interface StateDetail {
  code: number;
  reason: string;
  delayMs?: number;
  attempt?: number;
}

export interface WatchOptions {
  /** The gateway, e.g. "https://shop.example"; defaults to the page's origin in a browser. */
  baseUrl?: string;
  /** The viewer's JWT (or a function giving the current one); none: an anonymous viewer. */
  token?: string | null | (() => string | null | undefined);
  /** Resume after this seq (a previous watch's `lastSeq`) instead of starting with a snapshot. */
  since?: number | null;
  /** The viewer's session id (8-64 of A-Z a-z 0-9 _ -), counted once across reconnections. */
  sessionId?: string;
  onSnapshot?: (data: LiveSnapshot, seq: number) => void;
  onEvent?: (event: LiveEvent) => void;
  onMessage?: (message: ServerMessage) => void;
  onState?: (state: WatchState, detail?: StateDetail) => void;
  /** A WebSocket constructor where the platform has none (Node 20 without --experimental-websocket). */
  WebSocket?: new (url: string) => WebSocket;
  pingEveryMs?: number;
  pongWithinMs?: number;
  backoff?: { initialMs?: number; maxMs?: number };
}

export declare const STOP_CLOSES: ReadonlySet<number>;
export declare const CLOSE_TRY_AGAIN: 1013;

export declare class LiveWatch {
  constructor(streamId: string, options?: WatchOptions);
  readonly streamId: string;
  /** The seq of the last event applied (or of the snapshot): where a resume starts. */
  lastSeq: number | null;
  /** The current attempt's WebSocket, if any. */
  readonly socket: WebSocket | null;
  readonly state: WatchState | null;
  /** Events dropped because their seq was already applied. */
  readonly duplicates: number;
  connect(): void;
  send(frame: { type: string; [key: string]: unknown }): boolean;
  /** Post in the chat (signed-in viewers); false when not connected. */
  postChat(message: string): boolean;
  reconnectNow(): void;
  close(): void;
}

export declare function watchLive(streamId: string, options?: WatchOptions): LiveWatch;
