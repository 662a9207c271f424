import type { ChatMessage, LiveProduct, StreamView, ViewersUpdated } from "./generated/events.js";
import type { LiveEvent, LiveSnapshot } from "./watch.js";

export type LivePart = "stream" | "products" | "chat" | "viewers";

/** A live as the socket tells it: feed it the snapshot and each event, render what it holds. */
export declare class LiveState {
  stream: (StreamView & Record<string, unknown>) | null;
  products: LiveProduct[];
  featured: LiveProduct | null;
  pinned: Map<string, ChatMessage>;
  messages: Map<string, ChatMessage>;
  viewers: ViewersUpdated;
  deleted: boolean;
  applySnapshot(data: LiveSnapshot): void;
  /** Apply one event; the parts of the live it changed. */
  apply(event: LiveEvent): LivePart[];
}
