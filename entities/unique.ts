/** What a task class may declare as `static unique` (checked by src/flow/uniqueSpec.ts). */

/** What an enqueue does when a task with the same key stands. */
export type OnConflict = "skip" | "replace" | "error";

/** `static unique` as a task class declares it. */
export interface UniqueOption {
  /** Property names of the key: the class's own columns, or `queue`. */
  by: readonly string[];
  /** Default "skip". */
  onConflict?: OnConflict;
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
