/**
 * The default delay before a failed task runs again: exponential with jitter, so tasks that
 * failed together (an outage) do not all come back at the same instant.
 *
 * attempt 1 → about 1 s, 2 → 2 s, 3 → 4 s, … capped at one hour. The delay is drawn uniformly
 * from [d/2, d] ("equal jitter"): never shorter than half the nominal step.
 */
export interface BackoffOptions {
  baseMs: number;
  factor: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 1_000, factor: 2, maxMs: 3_600_000 };

/** Delay in ms before the attempt after `attempt` (1-based). `random` is injectable for tests. */
export function backoffDelay(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const nominal = Math.min(options.maxMs, options.baseMs * options.factor ** Math.max(0, attempt - 1));
  return Math.round(nominal / 2 + random() * (nominal / 2));
}
