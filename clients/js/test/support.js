// What the SDK's tests stand on: the real gateway and services the Python suite started
// (tests/e2e/test_js_client.py), reached through the environment it sets.

import { createHmac, randomUUID } from "node:crypto";

import { createClient, watchLive } from "../src/index.js";

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests from pytest (tests/e2e/test_js_client.py)`);
  return value;
}

export const gatewayUrl = required("VITRINE_GATEWAY_URL");
export const chatUrl = required("VITRINE_CHAT_URL"); // the chat service itself: posts while the gateway is down
export const tokens = { admin: required("VITRINE_ADMIN_TOKEN"), user: required("VITRINE_USER_TOKEN") };
export const admin = createClient({ baseUrl: gatewayUrl, token: tokens.admin });

/** A token of a new signed-in user, shaped like chassis.auth.issue_token's (HS256, the test
 * run's secret): each poster has a chat rate limit of their own. */
export function newUserToken(name = "Zoé") {
  const now = Math.floor(Date.now() / 1000);
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const claims = { sub: `js-${randomUUID()}`, iat: now, exp: now + 3600, aud: "authenticated",
    role: "authenticated", app_metadata: {}, user_metadata: { name } };
  const unsigned = `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}`;
  const signature = createHmac("sha256", required("VITRINE_JWT_SECRET")).update(unsigned).digest("base64url");
  return `${unsigned}.${signature}`;
}
// Quick retries, so a test is not spent waiting: the jitter and the doubling stay as in production.
export const FAST = { backoff: { initialMs: 100, maxMs: 1_000 } };

/** Ask the test run to stop, start or restart a service for real: "restart/gateway", … */
export async function control(action) {
  const answer = await fetch(`${required("VITRINE_CONTROL_URL")}/${action}`, { method: "POST" });
  if (!answer.ok) throw new Error(`${action}: ${answer.status} ${await answer.text()}`);
}

export async function eventually(check, { timeoutMs = 15_000, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await check();
    if (result) return result;
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A new live whose chat accepts messages (the chat service heard of it). */
export async function newLive(title) {
  const live = await admin.createLive({ title: `${title} ${randomUUID().slice(0, 8)}` });
  await eventually(async () => {
    try {
      return await admin.request("GET", `/api/live/streams/${live.id}/chat`);
    } catch {
      return null;
    }
  }, { what: "the chat service knows the live" });
  return live;
}

/** Post through the gateway as a new user; resolves to the message. */
export function post(liveId, text) {
  return createClient({ baseUrl: gatewayUrl, token: newUserToken() }).postChat(liveId, text);
}

/** Post to the chat service directly (services check the token themselves). */
export async function postToChatService(liveId, text) {
  const answer = await fetch(`${chatUrl}/api/live/chat`, {
    method: "POST",
    headers: { Authorization: `Bearer ${newUserToken()}`, "Content-Type": "application/json" },
    body: JSON.stringify({ stream_id: liveId, message: text }),
  });
  if (answer.status !== 201) throw new Error(`chat service: ${answer.status} ${await answer.text()}`);
  return answer.json();
}

/** watchLive() keeping everything it reports, with a way to wait for what is expected. */
export function recordedWatch(liveId, options = {}) {
  const seen = { snapshots: [], events: [], messages: [], states: [] };
  const watch = watchLive(liveId, {
    baseUrl: gatewayUrl,
    ...FAST,
    ...options,
    onSnapshot: (data, seq) => seen.snapshots.push({ data, seq }),
    onEvent: (event) => seen.events.push(event),
    onMessage: (message) => seen.messages.push(message),
    onState: (state, detail) => seen.states.push({ state, ...detail }),
  });
  const chat = () => seen.events.filter((e) => e.type === "chat.posted").map((e) => e.data.message.message);
  const until = async (check, what, timeoutMs = 15_000) => {
    try {
      return await eventually(() => check(seen), { what, timeoutMs });
    } catch (error) {
      const states = seen.states.map((s) => `${s.state}${s.code ? `(${s.code})` : ""}`).join(" ");
      error.message += `\n  states: ${states}\n  chat: ${JSON.stringify(chat())}\n  lastSeq: ${watch.lastSeq}`;
      throw error;
    }
  };
  return { watch, seen, chat, until };
}
