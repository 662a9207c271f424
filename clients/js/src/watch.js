// The viewer websocket `GET /ws/live/{stream_id}` (DESIGN.md §3, "Viewer websocket"), client side:
// a snapshot first, then every event of the live in order; resumed with `since=<last seq>` after
// any drop, each event applied once whatever the server replays.

import { retryDelay } from "./backoff.js";

// The gateway's close codes that mean "do not come back": a bad request (4400), a token refused
// (4401: sign in again, or watch anonymously, then call reconnectNow()), no such live (4404).
export const STOP_CLOSES = new Set([4400, 4401, 4404]);
export const CLOSE_TRY_AGAIN = 1013; // busy, a service away, too slow a reader: later, with since=
const CLOSE_NO_PONG = 4000; // ours: the connection died without saying so

const DEFAULTS = {
  connectWithinMs: 10_000,
  pingEveryMs: 20_000,
  pongWithinMs: 8_000,
  backoff: { initialMs: 500, maxMs: 15_000 },
};

/** Follow a live: see watch.d.ts for the options. Connects at once; `close()` ends it. */
export function watchLive(streamId, options = {}) {
  const watch = new LiveWatch(streamId, options);
  watch.connect();
  return watch;
}

export class LiveWatch {
  constructor(streamId, options = {}) {
    this.streamId = streamId;
    this.options = { ...DEFAULTS, ...options, backoff: { ...DEFAULTS.backoff, ...options.backoff } };
    this.lastSeq = options.since ?? null; // the last event applied: where a resume starts
    this.socket = null; // the WebSocket of the current attempt
    this.state = null;
    this.attempt = 0; // failed attempts in a row, for the backoff
    this.duplicates = 0; // events dropped as already applied (a replay overlapping)
    this.closed = false;
    this.timers = {};
    this.everLive = false;
    this.onOnline = () => {
      if (this.state !== "live") this.reconnectNow();
    };
    globalThis.addEventListener?.("online", this.onOnline);
  }

  /** The websocket address of the next attempt: the token and where to resume, if any. */
  url() {
    const base = this.options.baseUrl || globalThis.location?.origin;
    if (!base) throw new Error("watchLive needs baseUrl outside a browser page");
    const url = new URL(`/ws/live/${encodeURIComponent(this.streamId)}`, base);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const token = typeof this.options.token === "function" ? this.options.token() : this.options.token;
    if (token) url.searchParams.set("token", token);
    if (this.lastSeq !== null) url.searchParams.set("since", String(this.lastSeq));
    if (this.options.sessionId) url.searchParams.set("session_id", this.options.sessionId);
    return url.toString();
  }

  connect() {
    if (this.closed) return;
    clearTimeout(this.timers.retry);
    const Socket = this.options.WebSocket ?? globalThis.WebSocket;
    if (!Socket) throw new Error("no WebSocket here: pass options.WebSocket (Node 20: --experimental-websocket)");
    this.setState(this.everLive ? "reconnecting" : "connecting");
    const socket = new Socket(this.url());
    this.socket = socket;
    // A connection that neither opens nor fails (packets dropped on a mobile network) is given up.
    this.timers.connect = setTimeout(() => this.failed(socket, "connect timeout"), this.options.connectWithinMs);
    // Listeners ignore a socket that is no longer the current one (replaced by reconnectNow()).
    socket.addEventListener("open", () => {
      if (socket !== this.socket) return;
      clearTimeout(this.timers.connect);
      // The gateway accepts, then may still refuse (1013, 4404): its first frame, or the pong to
      // this ping (answered once the viewer is caught up), is what says the viewer is in.
      this.ping();
      this.timers.ping = setInterval(() => this.ping(), this.options.pingEveryMs);
    });
    socket.addEventListener("message", (event) => {
      if (socket === this.socket) this.received(event.data);
    });
    socket.addEventListener("close", (event) => {
      if (socket === this.socket) this.dropped(event.code, event.reason);
    });
    // Browsers follow a failed connection's "error" with "close" (CLOSED by then); Node 20's
    // WebSocket does not and stays CONNECTING, so that case is handled here.
    socket.addEventListener("error", () => {
      if (socket.readyState === 0 /* CONNECTING */) this.failed(socket, "could not connect");
    });
  }

  /** The attempt on `socket` failed before opening: as a close 1006 would. */
  failed(socket, reason) {
    if (socket !== this.socket) return;
    this.dropped(1006, reason); // no longer the current socket: its own close, if any, is ignored
    try {
      socket.close();
    } catch {
      // it failed already: nothing to release
    }
  }

  received(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return; // not a frame of the protocol
    }
    clearTimeout(this.timers.pong);
    if (this.state !== "live") this.wentLive();
    if (frame.type === "pong") return;
    if (frame.type === "snapshot") {
      // The live as of frame.seq: everything after it follows, whatever was applied before.
      this.lastSeq = frame.seq;
      this.options.onSnapshot?.(frame.data, frame.seq);
      return;
    }
    if (typeof frame.seq !== "number") {
      this.options.onMessage?.(frame); // answers to this viewer alone: error, chat.held
      return;
    }
    if (this.lastSeq !== null && frame.seq <= this.lastSeq) {
      this.duplicates += 1; // a replay overlapping what was applied: never twice
      return;
    }
    this.lastSeq = frame.seq;
    this.options.onEvent?.(frame);
  }

  wentLive() {
    this.attempt = 0;
    this.everLive = true;
    this.setState("live");
  }

  dropped(code, reason) {
    this.stopTimers();
    this.socket = null;
    if (this.closed) return;
    if (STOP_CLOSES.has(code)) {
      this.setState("stopped", { code, reason });
      return;
    }
    const delayMs = retryDelay(this.attempt, this.options.backoff);
    this.attempt += 1;
    const offline = globalThis.navigator?.onLine === false; // the "online" event brings it back
    this.setState(offline ? "offline" : "reconnecting", { code, reason, delayMs, attempt: this.attempt });
    this.timers.retry = setTimeout(() => this.connect(), delayMs);
  }

  ping() {
    if (!this.send({ type: "ping" })) return;
    clearTimeout(this.timers.pong);
    this.timers.pong = setTimeout(() => this.socket?.close(CLOSE_NO_PONG, "no pong"), this.options.pongWithinMs);
  }

  /** Send a frame of the protocol; false when not connected (nothing is queued). */
  send(frame) {
    const socket = this.socket;
    if (!socket || socket.readyState !== 1 /* OPEN */) return false;
    socket.send(JSON.stringify(frame));
    return true;
  }

  /** Post in the live's chat (signed in only): it comes back to everyone as `chat.posted`; a
   * refusal comes to onMessage as `{type: "error", data: {status, detail, retry_after?}}`. */
  postChat(message) {
    return this.send({ type: "chat.post", message });
  }

  /** Drop the connection and come back now, resuming with since= (e.g. after signing in). */
  reconnectNow() {
    if (this.closed) return;
    const socket = this.socket;
    this.socket = null;
    this.stopTimers();
    this.attempt = 0;
    socket?.close(1000, "reconnecting");
    this.connect();
  }

  /** Stop following the live: no reconnection after this. */
  close() {
    this.closed = true;
    globalThis.removeEventListener?.("online", this.onOnline);
    this.stopTimers();
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000, "bye");
    this.setState("closed");
  }

  stopTimers() {
    clearTimeout(this.timers.connect);
    clearInterval(this.timers.ping);
    clearTimeout(this.timers.pong);
    clearTimeout(this.timers.retry);
  }

  setState(name, detail) {
    this.state = name;
    this.options.onState?.(name, detail);
  }
}
