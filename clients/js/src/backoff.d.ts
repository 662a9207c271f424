/** The delay in ms before reconnection attempt `attempt + 1`: exponential, capped, jittered. */
export declare function retryDelay(
  attempt: number,
  options?: { initialMs?: number; maxMs?: number },
  random?: () => number,
): number;
