// How long to wait before reconnecting: exponential, capped, jittered so that a room dropped all
// at once (a gateway restarting, a 1013 to everyone) does not come back all at once.

/** The delay in ms before attempt `attempt + 1`: half of the exponential step for sure, the other
 * half at random ("equal jitter"), so no retry comes sooner than half the step. */
export function retryDelay(attempt, { initialMs = 500, maxMs = 15_000 } = {}, random = Math.random) {
  const step = Math.min(maxMs, initialMs * 2 ** attempt);
  return Math.round(step / 2 + random() * (step / 2));
}
