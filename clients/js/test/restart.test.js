// watchLive() through real outages: the gateway process restarted under it, and a gateway that
// answers 1013 ("try again later") because the streams service is away. The test run does the
// stopping and starting (control()); these tests run alone (--test-concurrency=1).

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { FAST, control, newLive, post, postToChatService, recordedWatch } from "./support.js";

const open = [];
after(() => open.forEach((watch) => watch.close()));

function watched(liveId, options) {
  const recorded = recordedWatch(liveId, options);
  open.push(recorded.watch);
  return recorded;
}

const isLive = (s) => s.states.at(-1)?.state === "live";

/** What the watch saw of the chat: every message once, in order, with increasing seqs. */
function assertInOrderOnce(seen, expected) {
  const posted = seen.events.filter((e) => e.type === "chat.posted");
  assert.deepEqual(posted.map((e) => e.data.message.message), expected);
  const seqs = seen.events.map((e) => e.seq);
  assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), `seqs not increasing: ${seqs}`);
}

test("across a gateway restart the watch resumes with since=: no gap, no duplicate", async () => {
  const live = await newLive("Restart");
  const { watch, seen, chat, until } = watched(live.id);
  await until((s) => s.snapshots.length === 1, "snapshot");
  await post(live.id, "before");
  await until(() => chat().length === 1, "before");

  await control("stop/gateway");
  await until((s) => s.states.at(-1)?.state === "reconnecting", "reconnecting");
  const lastSeen = watch.lastSeq;
  // The live goes on while the gateway is away: the chat service takes the messages.
  await postToChatService(live.id, "during 1");
  await postToChatService(live.id, "during 2");
  await control("start/gateway");

  await until((s) => isLive(s) && chat().length === 3, "the missed messages", 60_000);
  await post(live.id, "after");
  await until(() => chat().length === 4, "after");
  assertInOrderOnce(seen, ["before", "during 1", "during 2", "after"]);
  assert.equal(seen.snapshots.length, 1, "resumed by replay, not by a second snapshot");
  assert.ok(watch.url().includes(`since=${watch.lastSeq}`));
  assert.ok(seen.events.find((e) => e.data.message?.message === "during 1").seq > lastSeen);
  const attempts = seen.states.filter((s) => s.state === "reconnecting" && s.delayMs !== undefined);
  assert.ok(attempts.length >= 1, "it waited before retrying");
});

test("a 1013 from the gateway is retried with growing delays until it lets the viewer in", async () => {
  const live = await newLive("Try again");
  const { seen, chat, until } = watched(live.id);
  await until((s) => s.snapshots.length === 1, "snapshot");
  await post(live.id, "before");
  await until(() => chat().length === 1, "before");

  // A gateway that has never seen the live asks the streams service whether it may be watched;
  // with the streams service away, it cannot tell and closes with 1013.
  await control("stop/streams");
  try {
    await control("restart/gateway");
    await until((s) => s.states.filter((x) => x.code === 1013).length >= 3, "three 1013 closes");
    await postToChatService(live.id, "while refused");
  } finally {
    await control("start/streams");
  }
  // The streams service takes a while to be back (a busy machine): then the next retry is let in.
  await until((s) => isLive(s) && chat().length === 2, "let in again", 60_000);

  const refusals = seen.states.filter((s) => s.code === 1013);
  assert.ok(refusals.every((s) => s.state === "reconnecting"), "1013 never stops the watch");
  const attempts = refusals.map((s) => s.attempt);
  assert.ok(attempts.every((n, i) => i === 0 || n > attempts[i - 1]), `attempts ${attempts}`);
  // Each wait is within the upper half of its step, the step doubling per attempt up to the cap.
  for (const { attempt, delayMs } of refusals) {
    const step = Math.min(FAST.backoff.maxMs, FAST.backoff.initialMs * 2 ** (attempt - 1));
    assert.ok(delayMs >= step / 2 && delayMs <= step, `attempt ${attempt}: waited ${delayMs} ms`);
  }
  assertInOrderOnce(seen, ["before", "while refused"]);
  assert.equal(seen.snapshots.length, 1);
});
