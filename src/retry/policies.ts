/**
 * Retry policies: small composable values that decide, after a failed attempt, when the task runs
 * again, or `null` to give up. A task class declares one as a static property:
 *
 * ```ts
 * static retry = limitAttempts(3, exponentialBackoff({ baseMs: 1_000 }));
 * ```
 *
 * `maxAttempts` still caps attempts whatever the policy says. Policies are pure: the built-in ones
 * take an injectable clock (and random source), so tests need not wait.
 */
import { errorIs, InvalidOptionError } from "../errors";

/** After failed attempt number `attempt` (1-based), when to run again; `null` to give up. */
export type RetryPolicy = (attempt: number, error: Error) => Date | null;

/** Where time (and randomness, for jitter) comes from; `Date.now` and `Math.random` by default. */
export interface PolicyClock {
  now?: () => number;
  random?: () => number;
}

/** The same delay after every failure. */
export function fixedDelay(ms: number, clock: PolicyClock = {}): RetryPolicy {
  requireDelay("fixedDelay(ms)", ms);
  const now = clock.now ?? Date.now;
  return () => new Date(now() + ms);
}

export interface ExponentialBackoffOptions extends PolicyClock {
  /** Delay after the first failure. Default 1000 ms. */
  baseMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** Largest delay. Default one hour. */
  maxMs?: number;
  /**
   * Spread retries so tasks that failed together do not all return at once. `true` (default):
   * the delay is drawn uniformly from [d/2, d] ("equal jitter"); `false`: exactly d.
   */
  jitter?: boolean;
}

/** baseMs, baseMs·factor, baseMs·factor², … capped at maxMs; with jitter by default. ormq's default. */
export function exponentialBackoff(options: ExponentialBackoffOptions = {}): RetryPolicy {
  const { baseMs = 1_000, factor = 2, maxMs = 3_600_000, jitter = true } = options;
  requireDelay("exponentialBackoff: baseMs", baseMs);
  requireDelay("exponentialBackoff: maxMs", maxMs);
  if (!Number.isFinite(factor) || factor < 1) throw new InvalidOptionError(`exponentialBackoff: factor must be a number of 1 or more, got ${factor}`);
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  return (attempt) => {
    const nominal = Math.min(maxMs, baseMs * factor ** Math.max(0, attempt - 1));
    const delay = jitter ? nominal / 2 + random() * (nominal / 2) : nominal;
    return new Date(now() + Math.round(delay));
  };
}

/** Gives up after `n` attempts in all; otherwise defers to `policy`. */
export function limitAttempts(n: number, policy: RetryPolicy): RetryPolicy {
  if (!Number.isInteger(n) || n < 1) throw new InvalidOptionError(`limitAttempts: n must be an integer of 1 or more, got ${n}`);
  return (attempt, error) => (attempt >= n ? null : policy(attempt, error));
}

/**
 * Retries only errors that are instances of one of `errorClasses` (for a thread or process task,
 * that were instances where they were thrown: see `errorIs`); gives up on any other.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function retryOn(errorClasses: ReadonlyArray<abstract new (...args: any[]) => Error>, policy: RetryPolicy): RetryPolicy {
  if (errorClasses.length === 0) throw new InvalidOptionError("retryOn: give at least one error class");
  return (attempt, error) => (errorClasses.some((cls) => errorIs(error, cls)) ? policy(attempt, error) : null);
}

/** Never retries. */
export const noRetry: RetryPolicy = () => null;

function requireDelay(name: string, ms: number): void {
  if (!Number.isFinite(ms) || ms < 0) throw new InvalidOptionError(`${name} must be a number of milliseconds, 0 or more, got ${ms}`);
}
