/**
 * A task's lifecycle, stated once: its statuses (entities/status.ts), the transitions ormq makes
 * and who makes them, and the rules that decide an outcome's status. Each dialect writes these
 * rules in its SQL through the fragments below (the database applies them inside the guarded
 * statement, against the row as it is then), and tests/lifecycle.test.ts drives random sequences
 * of transitions through both dialects and checks every result against `TRANSITIONS`.
 */
import type { TaskStatus } from "../../entities/status";
import type { Completion } from "./dialect";

/** A transition, the statement that makes it, and what it is guarded by. */
export interface Transition {
  from: TaskStatus;
  to: TaskStatus;
  /** What makes it: a claim, an attempt's outcome, a rescue, an operator. */
  by: "claim" | "outcome" | "rescue" | "cancel" | "retry" | "dependencies";
}

/**
 * Every transition ormq makes. Anything else does not happen: a finished task moves only when an
 * operator retries it, and `running` is left only by its holder's outcome or by the rescue.
 */
export const TRANSITIONS: readonly Transition[] = [
  { from: "waiting", to: "pending", by: "dependencies" }, // its last dependency succeeded
  { from: "waiting", to: "failed", by: "dependencies" }, // a dependency failed (onDependencyFailure)
  { from: "waiting", to: "cancelled", by: "dependencies" },
  { from: "waiting", to: "cancelled", by: "cancel" },
  { from: "pending", to: "running", by: "claim" },
  { from: "pending", to: "cancelled", by: "cancel" },
  { from: "running", to: "succeeded", by: "outcome" },
  { from: "running", to: "failed", by: "outcome" },
  { from: "running", to: "pending", by: "outcome" }, // a retry, a snooze, a hand-back
  { from: "running", to: "cancelled", by: "outcome" }, // CancelTask, or a cancel request that wins
  { from: "running", to: "pending", by: "rescue" },
  { from: "running", to: "failed", by: "rescue" },
  { from: "running", to: "cancelled", by: "rescue" },
  { from: "failed", to: "pending", by: "retry" }, // with at least one more attempt
];

/** Whether `by` may move a task from `from` to `to`. */
export function allowed(from: TaskStatus, to: TaskStatus, by: Transition["by"]): boolean {
  return TRANSITIONS.some((t) => t.from === from && t.to === to && t.by === by);
}

/**
 * The status an attempt's outcome leaves. A cancel request made while the task ran wins over a
 * return to the queue (a retry, a snooze, a hand-back): the task ends cancelled instead of running
 * again. A final outcome (succeeded, failed, cancelled) stands as it is.
 */
export function statusAfterOutcome(requested: Completion["status"], cancelRequested: boolean): Completion["status"] {
  return requested === "pending" && cancelRequested ? "cancelled" : requested;
}

/** `statusAfterOutcome` in SQL: `requested` and `cancelRequestedAt` are SQL expressions. */
export function statusAfterOutcomeSql(requested: string, cancelRequestedAt: string): string {
  return `CASE WHEN ${requested} = 'pending' AND ${cancelRequestedAt} IS NOT NULL THEN 'cancelled' ELSE ${requested} END`;
}

/** An outcome's `finished_at`: null when the task goes back to the queue, else `now`. */
export function finishedAtAfterOutcomeSql(requested: string, cancelRequestedAt: string, now: string): string {
  return `CASE WHEN ${requested} = 'pending' AND ${cancelRequestedAt} IS NULL THEN NULL ELSE ${now} END`;
}

/**
 * The status the rescue leaves for a task whose worker was lost (the attempt counts): cancelled if
 * someone asked, failed if no attempt is left, else back to pending.
 */
export function statusAfterRescue(cancelRequested: boolean, attempts: number, maxAttempts: number): TaskStatus {
  if (cancelRequested) return "cancelled";
  return attempts >= maxAttempts ? "failed" : "pending";
}

/** `statusAfterRescue` in SQL, over the row's columns (prefixed by `alias`, as `t.`). */
export function statusAfterRescueSql(alias = ""): string {
  return `CASE WHEN ${alias}cancel_requested_at IS NOT NULL THEN 'cancelled' WHEN ${alias}attempts >= ${alias}max_attempts THEN 'failed' ELSE 'pending' END`;
}

/** The rescue's `finished_at`: null when the task goes back to the queue, else `now`. */
export function finishedAtAfterRescueSql(now: string, alias = ""): string {
  return `CASE WHEN ${alias}cancel_requested_at IS NULL AND ${alias}attempts < ${alias}max_attempts THEN NULL ELSE ${now} END`;
}

/**
 * Ready to be claimed: pending and due. `now` is an SQL expression (a parameter, or the database's
 * clock); `alias` prefixes the columns (`t.`). Every reader of "ready" uses this (the claims, the
 * counts of ready tasks): the partial claim index's predicate is its `status` half.
 */
export function readyWhere(now: string, alias = ""): string {
  return `${alias}status = 'pending' AND ${alias}run_at <= ${now}`;
}

/**
 * A success with nothing else to write (no error to record, no delay, no refund, the row kept):
 * both dialects write these for a whole batch in one statement, and the rest one by one.
 */
export function isPlainSuccess(c: Completion): boolean {
  return c.status === "succeeded" && c.event === "succeeded" && !c.remove && c.lastError === null && c.errors === null && c.delayMs === null && !c.refundAttempt;
}
