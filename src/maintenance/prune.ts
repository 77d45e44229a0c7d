import type { DataSource } from "typeorm";
import { BaseTaskEntity, FINISHED_STATUSES, type TaskStatus } from "../../entities/BaseTaskEntity";
import { deleteFinished, deleteOrphanEdges, deleteOrphanEvents, deleteSilentWorkers, finishedIds } from "../dialect/taskWrites";
import { InvalidOptionError, toError } from "../errors";
import { MAX_DELAY_MS } from "../storable";
import { checkRunAt } from "../validation";
import { resolveDataSource } from "../dataSource";
import { ormqFor } from "../client/client";

export interface PruneOptions {
  dataSource?: DataSource;
  /** Remove tasks that finished more than this long ago (ms), or before this date. */
  olderThan: number | Date;
  /**
   * Which finished statuses to remove. Default `succeeded` and `cancelled`: failed tasks stay as a
   * dead-letter list until you include `failed` (or retry them).
   */
  statuses?: TaskStatus[];
}

export interface PruneResult {
  /** Tasks removed (their events went with them). */
  deleted: number;
  /** Events older than the cutoff whose task was deleted some other way (see TaskEventEntity). */
  orphanedEventsDeleted: number;
  /** Tasks that could not be removed, with the reason: usually your own foreign key to them. */
  blocked: { id: string; error: string }[];
  /** Stopped or long-silent worker rows removed. */
  workersDeleted: number;
}

const BATCH = 500;
/** A worker row not marked stopped is pruned only after this long without a heartbeat (many leases). */
export const WORKER_SILENCE_MS = 3_600_000;

/**
 * Removes finished tasks and their history. A task your own rows still reference (a foreign key
 * without `onDelete: "CASCADE"` or `"SET NULL"`) is skipped and reported, not a reason to stop
 * half-way. Each batch is one DELETE guarded by status and finish time, and the DELETE of those
 * tasks' events, in one transaction. Events older than the cutoff whose task is gone (deleted by
 * the application) go too: `ormq_task_events` has no foreign key to cascade them.
 */
export async function prune(options: PruneOptions): Promise<PruneResult> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  const statuses = options.statuses ?? ["succeeded", "cancelled"];
  for (const status of statuses) {
    if (!FINISHED_STATUSES.includes(status)) throw new InvalidOptionError(`prune: statuses may only name finished statuses, got ${JSON.stringify(status)}`);
  }
  const now = await ormqFor(dataSource).clock.now();
  const cutoff = options.olderThan instanceof Date ? checkRunAt(options.olderThan, "prune: olderThan") : new Date(now - checkAge(options.olderThan));
  const result: PruneResult = { deleted: 0, orphanedEventsDeleted: 0, blocked: [], workersDeleted: 0 };
  const removed = await deleteInBatches(dataSource, (after) => finishedIds(dataSource.manager, statuses, cutoff.getTime(), after, BATCH), statuses, cutoff.getTime());
  result.deleted = removed.deleted;
  result.blocked = removed.blocked;
  result.orphanedEventsDeleted = await deleteOrphanEvents(dataSource.manager, cutoff.getTime());
  await deleteOrphanEdges(dataSource.manager);
  // A stopped worker's row goes at the cutoff; a row still marked running only once its heartbeat
  // is also older than WORKER_SILENCE_MS, so a short cutoff cannot hide a live worker. (Should it
  // happen anyway, the worker's next heartbeat writes its row again.)
  result.workersDeleted = await deleteSilentWorkers(dataSource.manager, cutoff.getTime(), now - WORKER_SILENCE_MS);
  return result;
}

function checkAge(ms: unknown): number {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0 || ms > MAX_DELAY_MS) {
    throw new InvalidOptionError(`prune: olderThan must be milliseconds from 0 to ${MAX_DELAY_MS} (100 years) or a valid Date, got ${String(ms)}`);
  }
  return ms;
}

/**
 * Deletes the finished tasks `next` lists, page after page (each page one guarded DELETE and its
 * events' DELETE, in one transaction). A task your own rows still reference is skipped and
 * reported (`blocked`), not a reason to stop half-way. For prune and deleteTasks.
 */
export async function deleteInBatches(
  dataSource: DataSource,
  next: (after: string) => Promise<string[]>,
  statuses: readonly TaskStatus[],
  cutoff: number,
): Promise<{ deleted: number; blocked: { id: string; error: string }[] }> {
  const result = { deleted: 0, blocked: [] as { id: string; error: string }[] };
  const skip = new Set<string>();
  let after = "0";
  for (;;) {
    const ids = await next(after);
    if (ids.length === 0) return result;
    after = ids[ids.length - 1];
    const guarded = (batch: string[]) => dataSource.transaction((m) => deleteFinished(m, batch, statuses, cutoff));
    try {
      result.deleted += await guarded(ids);
    } catch {
      // Something in the batch is held by a foreign key: find which, one by one.
      for (const id of ids) {
        if (skip.has(id)) continue;
        try {
          result.deleted += await guarded([id]);
        } catch (err) {
          skip.add(id);
          result.blocked.push({ id, error: toError(err).message });
        }
      }
    }
  }
}
