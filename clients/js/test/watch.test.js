// watchLive() against the real gateway: snapshot, ordered events, chat over the socket, dedupe.

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { LiveState, createClient, retryDelay, watchLive } from "../src/index.js";
import { gatewayUrl, newLive, post, recordedWatch, tokens } from "./support.js";

const open = [];
after(() => open.forEach((watch) => watch.close()));

function watched(liveId, options) {
  const recorded = recordedWatch(liveId, options);
  open.push(recorded.watch);
  return recorded;
}

test("the first frame is the snapshot, then every event in order", async () => {
  const live = await newLive("Snapshot");
  await post(live.id, "before 1");
  await post(live.id, "before 2");
  const { watch, seen, chat, until } = watched(live.id);
  await until((s) => s.snapshots.length === 1, "snapshot");
  const [{ data, seq }] = seen.snapshots;
  assert.equal(data.stream.id, live.id);
  assert.deepEqual(data.recent_messages.map((m) => m.message), ["before 1", "before 2"]);
  assert.equal(watch.lastSeq, seq);
  assert.deepEqual(seen.states.map((s) => s.state), ["connecting", "live"]);

  for (const n of [1, 2, 3, 4]) await post(live.id, `after ${n}`);
  await until(() => chat().length === 4, "four messages");
  assert.deepEqual(chat(), ["after 1", "after 2", "after 3", "after 4"]);
  const seqs = seen.events.map((e) => e.seq);
  assert.ok(seqs[0] > seq && seqs.every((s, i) => i === 0 || s > seqs[i - 1]), `seqs ${seqs}`);
  assert.equal(watch.lastSeq, seqs.at(-1));
  assert.equal(watch.duplicates, 0);

  // The SDK's LiveState renders the same live from the same frames.
  const state = new LiveState();
  state.applySnapshot(data);
  for (const event of seen.events) state.apply(event);
  assert.deepEqual([...state.messages.values()].map((m) => m.message),
    ["before 1", "before 2", "after 1", "after 2", "after 3", "after 4"]);
});

test("a signed-in viewer posts over the socket; an anonymous one is told to sign in", async () => {
  const live = await newLive("Chat");
  const signedIn = watched(live.id, { token: tokens.user });
  const anonymous = watched(live.id);
  await signedIn.until((s) => s.states.at(-1)?.state === "live", "signed-in viewer in");
  await anonymous.until((s) => s.states.at(-1)?.state === "live", "anonymous viewer in");

  assert.equal(signedIn.watch.postChat("hello from the socket"), true);
  for (const { until, chat } of [signedIn, anonymous]) {
    await until(() => chat().includes("hello from the socket"), "message reaches both");
  }
  const event = signedIn.seen.events.find((e) => e.type === "chat.posted");
  assert.equal(event.data.message.display_name, "Bob");

  anonymous.watch.postChat("me too");
  await anonymous.until((s) => s.messages.some((m) => m.type === "error"), "refusal");
  assert.equal(anonymous.seen.messages.find((m) => m.type === "error").data.status, 401);
});

test("a replay that overlaps what was applied is not applied twice (dedupe by seq)", async () => {
  const live = await newLive("Dedupe");
  const first = watched(live.id);
  await first.until((s) => s.snapshots.length === 1, "snapshot");
  for (const n of [1, 2, 3, 4, 5]) await post(live.id, `m${n}`);
  await first.until(() => first.chat().length === 5, "five messages");
  const seqs = first.seen.events.map((e) => e.seq);
  first.watch.close();

  // A viewer resumes from an older point than what it applied (its `since` was saved before the
  // last three events came): the gateway replays all five, the SDK applies only the last two.
  // The URL (since=) is made as watchLive() returns; lastSeq is set before any frame can arrive.
  const second = watched(live.id, { since: seqs[0] - 1 });
  second.watch.lastSeq = seqs[2];
  await second.until((s) => s.states.at(-1)?.state === "live" && second.watch.lastSeq === seqs.at(-1), "caught up");
  assert.deepEqual(second.chat(), ["m4", "m5"]);
  assert.equal(second.watch.duplicates, 3);
  assert.equal(second.seen.snapshots.length, 0, "a replay, not a snapshot");
});

test("a resume with nothing missed goes live on the pong, with no frame replayed", async () => {
  const live = await newLive("Quiet");
  const first = watched(live.id);
  await first.until((s) => s.snapshots.length === 1, "snapshot");
  const since = first.watch.lastSeq;
  first.watch.close();
  const again = watched(live.id, { since });
  await again.until((s) => s.states.at(-1)?.state === "live", "live on the pong");
  assert.equal(again.seen.snapshots.length, 0);
  assert.equal(again.seen.events.length, 0);
});

test("a live that does not exist stops the watch (4404): no retrying", async () => {
  const { seen, until } = watched("00000000-0000-4000-8000-000000000000");
  await until((s) => s.states.at(-1)?.state === "stopped", "stopped");
  assert.equal(seen.states.at(-1).code, 4404);
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(seen.states.at(-1).state, "stopped", "nothing after a stop");
});

test("REST errors are VitrineErrors carrying the status and the detail", async () => {
  const anonymous = createClient({ baseUrl: gatewayUrl });
  await assert.rejects(anonymous.createLive({ title: "nope" }), (error) =>
    error.name === "VitrineError" && error.status === 401 && typeof error.detail === "string");
  await assert.rejects(anonymous.getLive("00000000-0000-4000-8000-000000000000"),
    (error) => error.status === 404);
});

test("the backoff doubles up to its cap, jittered within the upper half of each step", () => {
  const options = { initialMs: 100, maxMs: 1_000 };
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((n) => retryDelay(n, options, () => 1)), [100, 200, 400, 800, 1000, 1000]);
  assert.deepEqual([0, 1, 2, 3].map((n) => retryDelay(n, options, () => 0)), [50, 100, 200, 400]);
});

test("outside a page, watchLive needs the gateway's address", () => {
  assert.throws(() => watchLive("x", {}), /baseUrl/);
});
