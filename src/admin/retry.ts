import type { DataSource, EntityManager } from "typeorm";
import { BaseTaskEntity, type TaskStatus } from "../../entities/BaseTaskEntity";
import { TaskEventEntity } from "../../entities/TaskEventEntity";
import { databaseNow } from "../clock";
import { announceInserted } from "../subscriber";
import { announcementOf } from "../wakeup";
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
  const task = await dataSource.getRepository(BaseTaskEntity).findOne({ where: { id: taskId }, select: { id: true, status: true } });
  return task ? { outcome: "notFailed", id: taskId, status: task.status } : { outcome: "notFound", id: taskId };
}

/** Requeues every failed task, or those of one type and/or queue. Returns how many. */
export async function retryFailed(options: { dataSource?: DataSource; type?: string; queue?: string } = {}): Promise<{ requeued: number }> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  let requeued = 0;
  let after = "0";
  for (;;) {
    const query = dataSource
      .getRepository(BaseTaskEntity)
      .createQueryBuilder("t")
      .select("t.id", "id")
      .where("t.status = 'failed' AND t.id > :after", { after })
      .orderBy("t.id")
      .limit(200);
    if (options.type) query.andWhere("t.type = :type", { type: options.type });
    if (options.queue) query.andWhere("t.queue = :queue", { queue: options.queue });
    const ids = (await query.getRawMany<{ id: string | number }>()).map((r) => String(r.id));
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
  if (result.affected !== 1) return false;
  await m.createQueryBuilder().insert().into(TaskEventEntity).values({ taskId: id, kind: "requeued", at: now }).updateEntity(false).execute();
  // Announced at commit like a new task, so that an idle worker runs it now, not at its next poll.
  const { queue, type } = await m.getRepository(BaseTaskEntity).findOneOrFail({ where: { id }, select: { queue: true, type: true } });
  announceInserted(m.queryRunner!, [announcementOf(queue, type)]);
  return true;
}
