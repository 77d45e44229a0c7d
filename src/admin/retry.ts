import type { DataSource, EntityManager } from "typeorm";
import { BaseTaskEntity, type TaskStatus } from "../../entities/BaseTaskEntity";
import { filteredIds, readTaskState, recordEvents, requeueFailed } from "../dialect/taskWrites";
import { InvalidOptionError } from "../errors";
import { checkTaskFilter, type TaskFilter } from "./taskFilter";
import { standingTasks } from "../dialect/uniqueTasks";
import { announcementOf } from "../client/announcements";
import { checkTaskId } from "../validation";
import { resolveDataSource } from "../dataSource";
import { ormqFor } from "../client/client";
import { reopenDependents } from "../workflow/dependencies";

export type RetryTaskResult =
  | { outcome: "requeued"; id: string }
  /** Its unique key is held by another unfinished task (`standingId`): it stays failed. */
  | { outcome: "duplicate"; id: string; standingId: string | null }
  | { outcome: "notFailed"; id: string; status: TaskStatus }
  | { outcome: "notFound"; id: string };

/**
 * Puts a failed task back in the queue, due now, keeping its history and errors. It gets at least
 * one more attempt: `maxAttempts` is raised to `attempts + 1` when it was used up. In a workflow,
 * the tasks its failure failed or cancelled without running wait for it again (see
 * reopenDependents), in the same transaction.
 */
export async function retryTask(id: string | number, options: { dataSource?: DataSource } = {}): Promise<RetryTaskResult> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  const taskId = checkTaskId(id, "retryTask(id)");
  const outcome = await dataSource.transaction((m) => requeue(m, taskId));
  if (outcome === true) return { outcome: "requeued", id: taskId };
  if (outcome !== false) return { outcome: "duplicate", id: taskId, standingId: outcome.standingId };
  const state = await readTaskState(dataSource.manager, taskId);
  return state ? { outcome: "notFailed", id: taskId, status: state.status } : { outcome: "notFound", id: taskId };
}

/**
 * Requeues every failed task the filter matches (type, queue, creation time, the class's own
 * columns: see TaskFilter; every failed task without one). Returns how many, and how many stayed
 * failed because another unfinished task holds their unique key (`duplicates`).
 */
export async function retryFailed(options: { dataSource?: DataSource } & Omit<TaskFilter, "status"> & { status?: "failed" } = {}): Promise<{ requeued: number; duplicates: number }> {
  const { dataSource: given, ...rest } = options;
  const dataSource = resolveDataSource(BaseTaskEntity, given);
  if (rest.status !== undefined && rest.status !== "failed") throw new InvalidOptionError(`retryFailed: only failed tasks are retried, got status ${JSON.stringify(rest.status)}`);
  const filter = checkTaskFilter(dataSource, { ...rest, status: "failed" }, "retryFailed");
  let requeued = 0;
  let duplicates = 0;
  let after = "0";
  for (;;) {
    const ids = await filteredIds(dataSource.manager, filter, after, 200);
    if (ids.length === 0) return { requeued, duplicates };
    // A page of tasks per transaction: one commit and one wake-up for all of them. A duplicate
    // is not an error (the guard skipped its write): the page goes on.
    await dataSource.transaction(async (m) => {
      for (const id of ids) {
        const outcome = await requeue(m, id);
        if (outcome === true) requeued++;
        else if (outcome !== false) duplicates++;
      }
    });
    after = ids[ids.length - 1];
  }
}

/**
 * One guarded UPDATE (status must still be `failed`), and its history event and wake-up (at the
 * commit of `m`'s transaction) when it took effect. Returns true when it did, or the holder of
 * its unique key when the unique guard kept it failed.
 */
async function requeue(m: EntityManager, id: string): Promise<boolean | { standingId: string | null }> {
  const now = new Date(await ormqFor(m.connection).clock.now(m.queryRunner));
  if (!(await requeueFailed(m, id, now))) {
    // Still failed with a unique key: the guard kept it, for the task that holds the key.
    const state = await readTaskState(m, id);
    if (state?.status !== "failed" || state.uniqueKey === null) return false;
    const holder = (await standingTasks(m, [{ key: state.uniqueKey, window: null }])).find((t) => t.id !== id);
    return { standingId: holder?.id ?? null };
  }
  const { queue, type } = (await readTaskState(m, id))!; // in this transaction, after the UPDATE: it exists
  // What its failure settled in a workflow waits for it again.
  await reopenDependents(m, id, now);
  if (ormqFor(m.connection).registry.recordsHistory(type)) await recordEvents(m, [{ taskId: id, kind: "requeued", at: now }]);
  // Announced at commit like a new task, so that an idle worker runs it now, not at its next poll.
  ormqFor(m.connection).announcements.inserted(m.queryRunner!, [announcementOf(queue, type)]);
  return true;
}
