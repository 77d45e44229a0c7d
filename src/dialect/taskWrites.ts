/**
 * The statements that change tasks from outside a worker (cancel, requeue, prune) and the one
 * writer of history events on the application's connection (enqueue, cancel, requeue). They run
 * on a TypeORM EntityManager, the caller's transaction when it has one, through TypeORM's query
 * builder, which writes the same statement for both databases. Each state change is an UPDATE or
 * DELETE guarded by the status it expects, and its row count is what the caller acts on.
 *
 * The worker's own statements (claim, complete, heartbeat, rescue) are the `Dialect`'s: they run
 * on connections of its own, per database (see dialect.ts).
 */
import { applyTaskFilter, type CheckedTaskFilter } from "./taskFilterSql";
import type { EntityManager } from "typeorm";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import type { TaskStatus } from "../../entities/status";
import { TaskEventEntity, type TaskEventKind } from "../../entities/TaskEventEntity";
import { TaskDependencyEntity } from "../../entities/TaskDependencyEntity";
import { WorkerEntity } from "../../entities/WorkerEntity";
import { contractOf } from "./index";

/** One history event, as written. */
export interface EventRow {
  taskId: string;
  kind: TaskEventKind;
  at: Date;
  worker?: string | null;
  attempt?: number | null;
  error?: string | null;
  /** For an attempt's outcome: when that attempt started. */
  startedAt?: Date | null;
}

/** Events per INSERT: a few hundred rows of six columns stay far below both databases' parameter limits. */
const EVENTS_PER_INSERT = 500;

/** Writes history events (the caller decides whether the task's class records history). */
export async function recordEvents(m: EntityManager, events: readonly EventRow[]): Promise<void> {
  for (let i = 0; i < events.length; i += EVENTS_PER_INSERT) {
    const rows = events.slice(i, i + EVENTS_PER_INSERT).map((e) => ({
      taskId: e.taskId,
      kind: e.kind,
      at: e.at,
      worker: e.worker ?? null,
      attempt: e.attempt ?? null,
      error: e.error ?? null,
      startedAt: e.startedAt ?? null,
    }));
    await m.createQueryBuilder().insert().into(TaskEventEntity).values(rows).updateEntity(false).execute();
  }
}


/** What cancel and requeue need to know of a task: its state, and its type for history and wake-ups. */
export interface TaskState {
  status: TaskStatus;
  cancelRequested: boolean;
  type: string;
  queue: string;
  /** The task's unique key (`static unique`), or null. */
  uniqueKey: string | null;
}

/** A task's state, or null when there is no such task. */
export async function readTaskState(m: EntityManager, id: string): Promise<TaskState | null> {
  const row = await m
    .getRepository(BaseTaskEntity)
    .createQueryBuilder("t")
    .select(["t.status AS status", "t.cancel_requested_at AS requested", "t.type AS type", "t.queue AS queue", "t.unique_key AS unique_key"])
    .where("t.id = :id", { id })
    .getRawOne<{ status: TaskStatus; requested: unknown; type: string; queue: string; unique_key: string | null }>();
  return row
    ? { status: row.status, cancelRequested: row.requested !== null && row.requested !== undefined, type: row.type, queue: row.queue, uniqueKey: row.unique_key ?? null }
    : null;
}

/** A pending or waiting task becomes `cancelled` (guarded: still one of those). True when it did. */
export async function cancelPending(m: EntityManager, id: string, lastError: string, now: Date): Promise<boolean> {
  const result = await m
    .createQueryBuilder()
    .update(BaseTaskEntity)
    .set({ status: "cancelled", finishedAt: now, updatedAt: now, lastError })
    .where("id = :id AND status IN ('pending', 'waiting')", { id })
    .execute();
  return result.affected === 1;
}

/**
 * The pending or waiting tasks among `ids` become `cancelled`, in statements of a bounded number
 * of ids, each guarded by the status. Returns those it cancelled, with their type.
 */
export async function cancelPendingMany(m: EntityManager, ids: readonly string[], lastError: string, now: Date): Promise<{ id: string; type: string }[]> {
  const out: { id: string; type: string }[] = [];
  for (let i = 0; i < ids.length; i += 1_000) {
    const part = ids.slice(i, i + 1_000);
    const candidates = await m
      .getRepository(BaseTaskEntity)
      .createQueryBuilder("t")
      .select(["t.id AS id", "t.type AS type"])
      .where("t.id IN (:...part) AND t.status IN ('pending', 'waiting')", { part })
      .getRawMany<{ id: string | number; type: string }>();
    if (candidates.length === 0) continue;
    const result = await m
      .createQueryBuilder()
      .update(BaseTaskEntity)
      .set({ status: "cancelled", finishedAt: now, updatedAt: now, lastError })
      .where("id IN (:...ids) AND status IN ('pending', 'waiting')", { ids: candidates.map((c) => String(c.id)) })
      .execute();
    if (result.affected === candidates.length) {
      out.push(...candidates.map((c) => ({ id: String(c.id), type: c.type })));
      continue;
    }
    // Some were claimed between the read and the write: those cancelled here are the ones with this write's marks.
    const rows = await m
      .getRepository(BaseTaskEntity)
      .createQueryBuilder("t")
      .select(["t.id AS id", "t.type AS type"])
      .where("t.id IN (:...ids) AND t.status = 'cancelled' AND t.finished_at = :now AND t.last_error = :lastError", { ids: candidates.map((c) => String(c.id)), now, lastError })
      .getRawMany<{ id: string | number; type: string }>();
    out.push(...rows.map((c) => ({ id: String(c.id), type: c.type })));
  }
  return out;
}

/** The running tasks among `ids` get a cancel request (guarded as requestCancel). Returns how many. */
export async function requestCancelMany(m: EntityManager, ids: readonly string[], lastError: string, now: Date): Promise<number> {
  let requested = 0;
  for (let i = 0; i < ids.length; i += 1_000) {
    const result = await m
      .createQueryBuilder()
      .update(BaseTaskEntity)
      .set({ cancelRequestedAt: now, updatedAt: now, lastError })
      .where("id IN (:...ids) AND status = 'running' AND cancel_requested_at IS NULL", { ids: ids.slice(i, i + 1_000) })
      .execute();
    requested += result.affected ?? 0;
  }
  return requested;
}

/** A running task gets a cancel request its worker acts on (guarded: running, none asked yet). */
export async function requestCancel(m: EntityManager, id: string, lastError: string, now: Date): Promise<boolean> {
  const result = await m
    .createQueryBuilder()
    .update(BaseTaskEntity)
    .set({ cancelRequestedAt: now, updatedAt: now, lastError })
    .where("id = :id AND status = 'running' AND cancel_requested_at IS NULL", { id })
    .execute();
  return result.affected === 1;
}

/**
 * A failed task back to the queue, due now, with at least one more attempt (`maxAttempts` raised
 * to `attempts + 1` when it was used up). Guarded: still failed. True when it was requeued; false
 * also when the unique guard kept it failed because another unfinished task holds its key.
 */
export async function requeueFailed(m: EntityManager, id: string, now: Date): Promise<boolean> {
  const result = await m
    .createQueryBuilder()
    .update(BaseTaskEntity)
    .set({
      status: "pending",
      runAt: now,
      updatedAt: now,
      finishedAt: null,
      lockedBy: null,
      lockedUntil: null,
      cancelRequestedAt: null,
      maxAttempts: () => "CASE WHEN attempts >= max_attempts THEN attempts + 1 ELSE max_attempts END",
    })
    .where("id = :id AND status = 'failed'", { id })
    .execute();
  return result.affected === 1;
}

/** Ids of the tasks the filter matches after `after` (by id), up to `limit`. */
export async function filteredIds(m: EntityManager, filter: CheckedTaskFilter, after: string, limit: number): Promise<string[]> {
  const query = m.getRepository(BaseTaskEntity).createQueryBuilder("t").select("t.id", "id").where("t.id > :after", { after }).orderBy("t.id").limit(limit);
  applyTaskFilter(query, filter, (name) => m.connection.driver.escape(name));
  return (await query.getRawMany<{ id: string | number }>()).map((r) => String(r.id));
}

/** Ids of tasks in `statuses` that finished before `cutoff` (epoch ms), after `after`, up to `limit`. */
export async function finishedIds(m: EntityManager, statuses: readonly TaskStatus[], cutoff: number, after: string, limit: number): Promise<string[]> {
  const rows = await m
    .getRepository(BaseTaskEntity)
    .createQueryBuilder("t")
    .select("t.id", "id")
    .where("t.status IN (:...statuses) AND t.finished_at < :cutoff AND t.id > :after", { statuses, cutoff, after })
    .orderBy("t.id")
    .limit(limit)
    .getRawMany<{ id: string | number }>();
  return rows.map((r) => String(r.id));
}

/**
 * Deletes these tasks, guarded by status and finish time, and then the events of those that went
 * (events have no foreign key to cascade them). Run it in a transaction. Returns how many went.
 */
export async function deleteFinished(m: EntityManager, ids: readonly string[], statuses: readonly TaskStatus[], cutoff: number): Promise<number> {
  const deleted = await m
    .createQueryBuilder()
    .delete()
    .from(BaseTaskEntity)
    .where("id IN (:...ids) AND status IN (:...statuses) AND finished_at < :cutoff", { ids, statuses, cutoff })
    .execute();
  await m.createQueryBuilder().delete().from(TaskEventEntity).where(`task_id IN (:...ids) AND ${withoutTask(m)}`, { ids }).execute();
  // A deleted task's own edges (what it waited for) go with it; edges to it stay while their
  // dependents do, recording how it ended (a batch's counts read them).
  await m
    .createQueryBuilder()
    .delete()
    .from(TaskDependencyEntity)
    .where(`task_id IN (:...ids) AND ${withoutTask(m, escapedTable(m, TaskDependencyEntity))}`, { ids })
    .execute();
  return deleted.affected ?? 0;
}

/**
 * Deletes page by page, by key: `page(after)` reads up to `batch` keys after `after` (in key order),
 * `remove(keys)` deletes their rows. Each its own short statement: a million orphaned rows must
 * not become one statement that holds its locks, and a drain's claims waiting on them, for
 * minutes. Returns how many rows went.
 */
async function deleteInPages(batch: number, page: (after: string) => Promise<string[]>, remove: (keys: string[]) => Promise<number>): Promise<number> {
  let deleted = 0;
  let after = "0";
  for (;;) {
    const keys = await page(after);
    if (keys.length === 0) return deleted;
    after = keys[keys.length - 1];
    deleted += await remove(keys);
    if (keys.length < batch) return deleted;
  }
}

/** Events older than `cutoff` whose task is gone (deleted by the application). Returns how many. */
export function deleteOrphanEvents(m: EntityManager, cutoff: number, batch = 5_000): Promise<number> {
  return deleteInPages(
    batch,
    async (after) =>
      (
        await m
          .createQueryBuilder()
          .select("e.id", "id")
          .from(TaskEventEntity, "e")
          .where(`e.id > :after AND e.at < :cutoff AND ${withoutTask(m, "e")}`, { after, cutoff })
          .orderBy("e.id")
          .limit(batch)
          .getRawMany<{ id: unknown }>()
      ).map((r) => String(r.id)),
    async (ids) => (await m.createQueryBuilder().delete().from(TaskEventEntity).where("id IN (:...ids)", { ids }).execute()).affected ?? 0,
  );
}

/**
 * Edges whose waiting task is gone without them (deleted by a success of a class with
 * `keepSucceeded = false`, or by the application), in pages as deleteOrphanEvents. Returns how
 * many. An edge is written in its task's own transaction, so none is seen before its task.
 */
export function deleteOrphanEdges(m: EntityManager, batch = 5_000): Promise<number> {
  const edges = escapedTable(m, TaskDependencyEntity);
  return deleteInPages(
    batch,
    async (after) =>
      (
        await m
          .createQueryBuilder()
          .select("DISTINCT d.task_id", "task_id")
          .from(TaskDependencyEntity, "d")
          .where(`d.task_id > :after AND ${withoutTask(m, "d")}`, { after })
          .orderBy("d.task_id")
          .limit(batch)
          .getRawMany<{ task_id: unknown }>()
      ).map((r) => String(r.task_id)),
    async (ids) => (await m.createQueryBuilder().delete().from(TaskDependencyEntity).where(`task_id IN (:...ids) AND ${withoutTask(m, edges)}`, { ids }).execute()).affected ?? 0,
  );
}

/**
 * Worker rows whose heartbeat is older than `cutoff`: a stopped worker's at once, a row still
 * marked running only when its heartbeat is older than `silentBefore` too. Returns how many.
 */
export async function deleteSilentWorkers(m: EntityManager, cutoff: number, silentBefore: number): Promise<number> {
  const result = await m
    .createQueryBuilder()
    .delete()
    .from(WorkerEntity)
    .where("last_heartbeat_at < :cutoff AND (state = 'stopped' OR last_heartbeat_at < :silent)", { cutoff, silent: Math.min(cutoff, silentBefore) })
    .execute();
  return result.affected ?? 0;
}

/** An event's task no longer exists (`events`: how the statement names the events table). */
function withoutTask(m: EntityManager, table = escapedTable(m, TaskEventEntity)): string {
  const tasks = escapedTable(m, BaseTaskEntity);
  return `NOT EXISTS (SELECT 1 FROM ${tasks} t WHERE t.id = ${table}.task_id)`;
}

function escapedTable(m: EntityManager, entity: typeof BaseTaskEntity | typeof TaskEventEntity | typeof TaskDependencyEntity): string {
  const metadata = m.connection.getMetadata(entity);
  return [metadata.schema, metadata.tableName]
    .filter((part): part is string => !!part)
    .map((part) => m.connection.driver.escape(part))
    .join(".");
}

/**
 * A running attempt's progress (`ctx.progress`). Guarded by the attempt: still running, held by
 * this worker, this attempt; false when it is not (its lease was lost: nothing is written).
 */
export async function writeProgress(
  m: EntityManager,
  attempt: { id: string; workerId: string; attempt: number },
  progress: { fraction: number; message: string | null },
): Promise<boolean> {
  const result = await m
    .createQueryBuilder()
    .update(BaseTaskEntity)
    .set({ progress: progress.fraction, progressMessage: progress.message })
    .where("id = :id AND status = 'running' AND locked_by = :worker AND attempts = :attempt", { id: attempt.id, worker: attempt.workerId, attempt: attempt.attempt })
    .updateEntity(false)
    .execute();
  return result.affected === 1;
}


/**
 * Makes the server end `m`'s transaction, and free its locks, if its client leaves it idle for
 * `ms` (the dialect's idleTransactionLimit; nothing where the database has no such limit).
 */
export async function limitIdleTransaction(m: EntityManager, ms: number): Promise<void> {
  const statement = contractOf(m.connection).sql.idleTransactionLimit?.(ms);
  if (statement) await m.query(statement);
}

/** An attempt's success as written in the task's own transaction (see worker/attemptCommit.ts). */
export interface SuccessInTransaction {
  id: string;
  /** The task's `attempts` at claim. */
  attempt: number;
  workerId: string;
  /** JSON text of the result, or null. */
  result: string | null;
  history: boolean;
  /** Delete the row instead (a class with `keepSucceeded = false`), unless another table refers to it. */
  remove: boolean;
  /** When the attempt started (the task's `started_at`), for its history row. */
  startedAt: Date | null;
}

/**
 * Records an attempt's success inside the caller's transaction, so that it commits, or rolls
 * back, with the task's own writes: the same guard as the worker's completion (still running,
 * held by this worker, on this attempt). False when the guard refused it: the attempt no longer
 * holds the task (its lease expired and it was rescued, or it was cancelled), and the caller must
 * roll back.
 */
export async function succeedInTransaction(m: EntityManager, s: SuccessInTransaction, now: Date): Promise<boolean> {
  const guard = "id = :id AND status = 'running' AND locked_by = :worker AND attempts = :attempt";
  const params = { id: s.id, worker: s.workerId, attempt: s.attempt };
  let written = false;
  if (s.remove) {
    // In a savepoint: a row another table's foreign key still points to is refused, and is then
    // updated like any other success rather than failing the caller's whole transaction.
    written = await m
      .transaction(async (inner) => (await inner.createQueryBuilder().delete().from(BaseTaskEntity).where(guard, params).execute()).affected === 1)
      .catch(() => false);
  }
  if (!written) {
    const result = await m
      .createQueryBuilder()
      .update(BaseTaskEntity)
      // The result is JSON text already: set as is, not through the column's simple-json transformer.
      .set({ status: "succeeded", result: () => ":result", finishedAt: now, updatedAt: now, lockedBy: null, lockedUntil: null })
      .where(guard, params)
      .setParameter("result", s.result)
      .updateEntity(false)
      .execute();
    written = result.affected === 1;
  }
  if (!written) return false;
  if (s.history) await recordEvents(m, [{ taskId: s.id, kind: "succeeded", at: now, worker: s.workerId, attempt: s.attempt, startedAt: s.startedAt }]);
  return true;
}
