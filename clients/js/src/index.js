// @vitrine/client: the gateway's REST API and the viewer websocket, for any frontend.

export { VitrineClient, VitrineError, createClient, describe } from "./http.js";
export { LiveState } from "./livestate.js";
export { CLOSE_TRY_AGAIN, LiveWatch, STOP_CLOSES, watchLive } from "./watch.js";
export { retryDelay } from "./backoff.js";
