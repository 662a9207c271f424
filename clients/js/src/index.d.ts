export * from "./http.js";
export * from "./livestate.js";
export * from "./watch.js";
export * from "./backoff.js";
export type * from "./generated/events.js";
export type { components, operations, paths } from "./generated/openapi.js";
