import type { DataSource, EntityManager } from "typeorm";
import { BaseTaskEntity, type TaskStatus } from "../../entities/BaseTaskEntity";
import { databaseNow } from "../dialect/clock";
import { failedIds, readTaskState, recordEvents, requeueFailed } from "../dialect/taskWrites";
import { TaskRegistry } from "../registry";
import { announceInserted } from "../enqueue/subscriber";
import { announcementOf } from "../enqueue/announcements";
import { checkTaskId } from "../validation";
import { resolveDataSource } from "../dataSource";

export type RetryTaskResult =
  | { outcome: "requeued"; id: string }
  | { outcome: "notFailed"; id: string; status: TaskStatus }
  | { outcome: "notFound"; id: string };

/**
 * Puts a failed task back in the queue, due now, keeping its history and errors. It gets at least
 * one more attempt: `maxAttempts` is raised to `attempts + 1` when it was used up.
 */
export async function retryTask(id: string | number, options: { dataSource?: DataSource } = {}): Promise<RetryTaskResult> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  const taskId = checkTaskId(id, "retryTask(id)");
  if (await dataSource.transaction((m) => requeue(m, taskId))) return { outcome: "requeued", id: taskId };
  const state = await readTaskState(dataSource.manager, taskId);
  return state ? { outcome: "notFailed", id: taskId, status: state.status } : { outcome: "notFound", id: taskId };
}

/** Requeues every failed task, or those of one type and/or queue. Returns how many. */
export async function retryFailed(options: { dataSource?: DataSource; type?: string; queue?: string } = {}): Promise<{ requeued: number }> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  let requeued = 0;
  let after = "0";
  for (;;) {
    const ids = await failedIds(dataSource.manager, { type: options.type, queue: options.queue }, after, 200);
    if (ids.length === 0) return { requeued };
    // A page of tasks per transaction: one commit and one wake-up for all of them.
    requeued += await dataSource.transaction(async (m) => {
      let n = 0;
      for (const id of ids) if (await requeue(m, id)) n++;
      return n;
    });
    after = ids[ids.length - 1];
  }
}

/**
 * One guarded UPDATE (status must still be `failed`), and its history event and wake-up (at the
 * commit of `m`'s transaction) when it took effect.
 */
async function requeue(m: EntityManager, id: string): Promise<boolean> {
  const now = new Date(await databaseNow(m.connection, m.queryRunner));
  if (!(await requeueFailed(m, id, now))) return false;
  const { queue, type } = (await readTaskState(m, id))!; // in this transaction, after the UPDATE: it exists
  if (TaskRegistry.for(m.connection).recordsHistory(type)) await recordEvents(m, [{ taskId: id, kind: "requeued", at: now }]);
  // Announced at commit like a new task, so that an idle worker runs it now, not at its next poll.
  announceInserted(m.queryRunner!, [announcementOf(queue, type)]);
  return true;
}
