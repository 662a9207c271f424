// The one HTTP helper of the pages: JSON in and out, the bearer token, Vitrine's error format.

import { token } from "./auth.js";

export class ApiError extends Error {
  constructor(status, detail, retryAfter) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
    this.detail = detail;
    this.retryAfter = retryAfter;
  }
}

/**
 * `fetch` the gateway; returns the parsed JSON body (null for 204), throws ApiError otherwise —
 * also when `expect` names the one status that means it worked (e.g. 201: created) and another came.
 */
export async function api(path, { method = "GET", body, headers = {}, signal, expect } = {}) {
  const sent = { ...headers };
  const bearer = token();
  if (bearer) sent.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) sent["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "network");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text };
  }
  if (!response.ok || (expect !== undefined && response.status !== expect)) {
    const retry = Number(response.headers.get("Retry-After")) || undefined;
    throw new ApiError(response.status, describe(data?.detail ?? response.statusText), retry);
  }
  return data;
}

/** A readable sentence from FastAPI's `detail` (a string, or a list of validation errors). */
export function describe(detail) {
  if (Array.isArray(detail)) {
    return detail.map((e) => `${(e.loc || []).slice(1).join(".")}: ${e.msg}`).join("; ");
  }
  return typeof detail === "string" ? detail : JSON.stringify(detail);
}

/** Random letters for session ids and idempotency keys (works outside secure contexts too). */
export function randomId(bytes = 16) {
  const values = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(values, (b) => b.toString(16).padStart(2, "0")).join("");
}
