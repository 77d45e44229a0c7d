/**
 * ormq_tasks' own indexes: partial, and the claim's `priority DESC`, which TypeORM's `@Index`
 * cannot make on every database (no DESC anywhere, no WHERE on MySQL). The entity declares them
 * by name with `synchronize: false`, so TypeORM's synchronize neither creates nor drops them:
 * ormq's migrations create them, and where a schema was made by synchronize alone, ormq does (a
 * worker at its registration: the ones below; the unique guard's install: the two unique ones).
 * A migration keeps its own copy of each definition: a migration is history.
 */
import type { IndexSpec } from "./contract";

export type TaskIndex = Omit<IndexSpec, "table">;

/** What the claim, an idle worker's sleep, the rescue and the dead-letter list read. */
export const TASK_INDEXES: readonly TaskIndex[] = [
  // Ready tasks in claim order: highest priority first, then oldest due time, then insertion order.
  { name: "ormq_tasks_claim", columns: ["priority DESC", "run_at", "id"], where: "status = 'pending'", withoutWhere: { lead: ["status"] } },
  // The earliest upcoming due time, for an idle worker's sleep: only tasks made ready later than
  // they were created (scheduled, retried, snoozed), so the usual immediate enqueue pays nothing.
  // Without partial indexes, over every row and without the status: the read asks for due times
  // after now, which nearly only pending tasks have (a task runs once due), and an entry moves
  // only when a due time does, not at each claim and outcome as one led by the status did.
  { name: "ormq_tasks_scheduled", columns: ["run_at"], where: "status = 'pending' AND run_at > created_at", withoutWhere: "whole" },
  // Running tasks by lease end, for the rescue of expired leases.
  { name: "ormq_tasks_lease", columns: ["locked_until"], where: "status = 'running'", withoutWhere: { lead: ["status"] } },
  // Failed tasks by type: the dead-letter list.
  // Without partial indexes (MySQL) every write of a status would move an entry of this index too,
  // for a list that is seldom read: there the indexes led by status serve `status = 'failed'`
  // (measured on MariaDB: a drain's server time 12-14% lower without it).
  { name: "ormq_tasks_type", columns: ["type"], where: "status = 'failed'", withoutWhere: "none" },
  // A task's children (ctx.enqueue): only tasks that have a parent. Without partial indexes, a
  // whole one (a NULL entry per task, written at insert; a status change does not move it).
  { name: "ormq_tasks_parent", columns: ["parent_id"], where: "parent_id IS NOT NULL", withoutWhere: "whole" },
  // Tasks waiting for their dependencies, for the sweep of those a crash left with nothing open to
  // wait for. Without partial indexes, the indexes led by status serve `status = 'waiting'`.
  { name: "ormq_tasks_waiting", columns: ["id"], where: "status = 'waiting'", withoutWhere: "none" },
  // Fair classes' pending tasks by type and share key, in claim order within each key (see
  // fairClaim.ts): partial, so that other tasks add no entry. Without partial indexes (MySQL), not
  // here: FAIR_INDEX_WITHOUT_WHERE is made by the first worker of a fair class.
  { name: "ormq_tasks_fair", columns: ["type", "fair_key", "priority DESC", "run_at", "id"], where: "status = 'pending' AND fair_key IS NOT NULL", withoutWhere: "none" },
];

/**
 * The fair claim's index where indexes cannot be partial: over every row (a task of another class
 * has an entry with no key), led by type and status so that the claim's probes read only pending
 * tasks. It moves at each claim and outcome, so it exists only where fairness is used: made by a
 * worker that runs a fair class (MySQL's ensureTaskIndexes).
 */
export const FAIR_INDEX_WITHOUT_WHERE: TaskIndex = { name: "ormq_tasks_fair", columns: ["type", "status", "fair_key", "priority DESC", "run_at", "id"], withoutWhere: "whole" };

/** Unique tasks: one unfinished task per key, and one task per key and window whatever its status. */
export const UNIQUE_INDEXES: readonly TaskIndex[] = [
  { name: "ormq_tasks_unique", columns: ["unique_key"], unique: true, where: "unique_key IS NOT NULL AND status IN ('pending', 'running')", withoutWhere: "none" },
  { name: "ormq_tasks_unique_window", columns: ["unique_window"], unique: true, where: "unique_window IS NOT NULL", withoutWhere: "whole" },
];

/** The indexes of `wanted` not among `existing` (index names read from the database). */
export function missingIndexes(wanted: readonly TaskIndex[], existing: Iterable<string>): TaskIndex[] {
  const have = new Set(existing);
  return wanted.filter((index) => !have.has(index.name));
}
