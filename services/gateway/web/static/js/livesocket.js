// The viewer websocket (README "Viewer websocket"): a snapshot, then every event in order.
// Reconnects by itself with `since=<last seq>`; an event at or below the last seq is dropped,
// so a replay that overlaps what was already applied never shows twice.

const PING_EVERY_MS = 20_000;
const PONG_WITHIN_MS = 8_000;
const FINAL_CLOSES = new Set([4400, 4404]); // a bad request or no such live: retrying won't help

export class LiveSocket {
  /**
   * @param {string} streamId
   * @param {object} options  token(): the JWT or null; sessionId; onSnapshot(data, seq);
   *   onEvent(frame); onMessage(frame) for frames without seq (error, chat.held);
   *   onState("connecting" | "open" | "reconnecting" | "closed", detail)
   */
  constructor(streamId, options) {
    this.streamId = streamId;
    this.options = options;
    this.lastSeq = null;
    this.socket = null;
    this.attempt = 0;
    this.stopped = false;
    this.timers = {};
    this.onOnline = () => this.reconnectNow();
    window.addEventListener("online", this.onOnline);
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = new URLSearchParams();
    const token = this.options.token?.();
    if (token) query.set("token", token);
    if (this.lastSeq !== null) query.set("since", String(this.lastSeq));
    if (this.options.sessionId) query.set("session_id", this.options.sessionId);
    const q = query.toString();
    return `${scheme}//${location.host}/ws/live/${this.streamId}${q ? `?${q}` : ""}`;
  }

  connect() {
    this.stopped = false;
    clearTimeout(this.timers.retry);
    this.state(this.attempt === 0 && this.lastSeq === null ? "connecting" : "reconnecting");
    const socket = new WebSocket(this.url());
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.attempt = 0;
      this.heartbeat();
      // Resuming: what was missed (maybe nothing) follows; the first visit waits for its snapshot.
      if (this.lastSeq !== null) this.state("open");
    });
    socket.addEventListener("message", (event) => {
      if (socket !== this.socket) return;
      this.received(event.data);
    });
    socket.addEventListener("close", (event) => {
      if (socket !== this.socket) return;
      this.closed(event.code, event.reason);
    });
  }

  received(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    clearTimeout(this.timers.pong);
    if (frame.type === "pong") return;
    if (frame.type === "snapshot") {
      this.lastSeq = frame.seq;
      this.state("open");
      this.options.onSnapshot(frame.data, frame.seq);
      return;
    }
    if (typeof frame.seq !== "number") {
      this.options.onMessage?.(frame);
      return;
    }
    if (this.lastSeq !== null && frame.seq <= this.lastSeq) return; // seen already
    this.lastSeq = frame.seq;
    this.options.onEvent(frame);
  }

  closed(code, reason) {
    clearInterval(this.timers.ping);
    clearTimeout(this.timers.pong);
    this.socket = null;
    if (this.stopped) return;
    if (FINAL_CLOSES.has(code)) {
      this.state("closed", { code, reason });
      return;
    }
    if (code === 4401) this.options.onBadToken?.(); // the next attempt goes anonymous
    this.state("reconnecting", { code, reason });
    // 0.5 s, 1 s, 2 s … up to 10 s, with jitter so a room does not come back all at once.
    const delay = Math.min(10_000, 500 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
    this.attempt += 1;
    this.timers.retry = setTimeout(() => this.connect(), delay);
  }

  heartbeat() {
    clearInterval(this.timers.ping);
    this.timers.ping = setInterval(() => {
      if (!this.send({ type: "ping" })) return;
      // No answer at all: the connection is dead without having said so (a network drop).
      this.timers.pong = setTimeout(() => this.socket?.close(4000, "no pong"), PONG_WITHIN_MS);
    }, PING_EVERY_MS);
  }

  /** Send a frame; false when the socket is not open. */
  send(message) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  /** Drop the current connection (e.g. after signing in) and resume right away with since=. */
  reconnectNow() {
    if (this.stopped) return;
    const socket = this.socket;
    this.socket = null;
    this.attempt = 0;
    socket?.close(1000, "reconnecting");
    clearInterval(this.timers.ping);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.onOnline);
    Object.values(this.timers).forEach((id) => clearTimeout(id));
    this.socket?.close(1000, "bye");
    this.socket = null;
  }

  state(name, detail) {
    this.currentState = name;
    this.options.onState?.(name, detail);
  }
}
