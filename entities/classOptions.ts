/** What a task class may declare as `static unique`, `static schedule` and its limits (checked in src/flow and src/schedule). */

/** What an enqueue does when a task with the same key stands. */
export type OnConflict = "skip" | "replace" | "error";

/**
 * One of `T`'s literals, or any string (checked when the class is registered, with a
 * TaskDefinitionError naming it). A subclass's `static unique = { onConflict: "skip" }` is typed
 * `string` by TypeScript (a static initializer takes no type from the base class), which a plain
 * union would refuse (TS2417) unless written `as const`; editors still offer the literals.
 */
export type Loose<T extends string> = T | (string & {});

/** `static unique` as a task class declares it. */
export interface UniqueOption {
  /** Property names of the key: the class's own columns, or `queue`. */
  by: readonly string[];
  /** "skip" (default), "replace" or "error". */
  onConflict?: Loose<OnConflict>;
  /** A fixed window ("1h", or milliseconds): one task per key per window, finished or not. */
  within?: string | number;
}

/** `static concurrencyLimit`: at most `max` running across all workers, in all or per `by` column value. */
export type ConcurrencyLimitOption = number | { max: number; by?: string };

/** `static rateLimit`: at most `max` claimed in any `perMs` window across all workers, in all or per `by` column value. */
export interface RateLimitOption {
  max: number;
  perMs: number;
  by?: string;
}

/**
 * `static fairness`: the claim serves this class's ready tasks round-robin across the values of the
 * `by` column (a tenant), weighted by `weights` (by value as text; default 1, at most 1,000).
 */
export interface FairnessOption {
  by: string;
  weights?: Record<string, number>;
}

/** What a schedule does with the ticks it missed while no scheduler ran (or it was paused). */
export type CatchUp = "skip" | "one" | "all";

/** `static schedule` as a task class declares it: a cron string, or this. */
export interface ScheduleOption {
  /** 5 fields (minute first), or 6 with seconds first: "0 2 * * *", "*\/10 * * * * *". */
  cron: string;
  /** An IANA time zone ("Europe/Paris"). Default UTC. */
  timezone?: string;
  /** "skip" (default: a tick more than 10 s late is not enqueued), "one" or "all". See docs/scheduling.md. */
  catchUp?: Loose<CatchUp>;
  /** Values of the class's own columns for every task the schedule enqueues. */
  data?: Record<string, unknown>;
}
