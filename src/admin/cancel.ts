import type { DataSource } from "typeorm";
import { BaseTaskEntity, FINISHED_STATUSES, type TaskStatus } from "../../entities/BaseTaskEntity";
import type { CancelResult } from "../../entities/operations";
import { TaskEventEntity } from "../../entities/TaskEventEntity";
import { databaseNow } from "../clock";
import { OrmqError } from "../errors";
import { MAX_MESSAGE_CHARS, storableText } from "../storable";
import { checkTaskId } from "../validation";
import { resolveDataSource } from "../dataSource";

export type { CancelResult };

export interface CancelOptions {
  dataSource?: DataSource;
  /**
   * Recorded as the task's last error, after `cancelled: `. NUL and lone surrogates are replaced
   * (U+FFFD) and a reason longer than MAX_MESSAGE_CHARS (4,096) is cut.
   */
  reason?: string;
}

/**
 * Cancels a task by id. Each step is one UPDATE guarded by the status it expects, so it is right
 * whatever the task's worker does meanwhile: a pending task becomes `cancelled`; a running one gets
 * a cancel request that its worker (in any process) notices and acts on; a finished task is left
 * alone and reported as such.
 */
export async function cancelTask(id: string | number, options: CancelOptions = {}): Promise<CancelResult> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  const taskId = checkTaskId(id, "cancelTask(id)");
  // Stored as the last error and in the history: text both databases take (no NUL, no lone
  // surrogate), bounded like an error message.
  const reason = storableText(options.reason ?? "cancelled on request", MAX_MESSAGE_CHARS);
  const repo = dataSource.getRepository(BaseTaskEntity);
  // A task can move between our statements (claimed, retried): go round again, a few times at most.
  for (let round = 0; round < 5; round++) {
    const now = new Date(await databaseNow(dataSource));
    const pending = await repo
      .createQueryBuilder()
      .update()
      .set({ status: "cancelled", finishedAt: now, updatedAt: now, lastError: `cancelled: ${reason}` })
      .where("id = :id AND status = 'pending'", { id: taskId })
      .execute();
    if (pending.affected === 1) {
      await dataSource
        .createQueryBuilder()
        .insert()
        .into(TaskEventEntity)
        .values({ taskId, kind: "cancelled", at: now, error: `cancelled: ${reason}` })
        .updateEntity(false)
        .execute();
      return { outcome: "cancelled", id: taskId };
    }

    const running = await repo
      .createQueryBuilder()
      .update()
      .set({ cancelRequestedAt: now, updatedAt: now, lastError: `cancelled: ${reason}` })
      .where("id = :id AND status = 'running' AND cancel_requested_at IS NULL", { id: taskId })
      .execute();
    if (running.affected === 1) return { outcome: "cancelRequested", id: taskId };

    const row = await repo
      .createQueryBuilder("t")
      .select(["t.status AS status", "t.cancel_requested_at AS requested"])
      .where("t.id = :id", { id: taskId })
      .getRawOne<{ status: TaskStatus; requested: unknown }>();
    if (!row) return { outcome: "notFound", id: taskId };
    if (FINISHED_STATUSES.includes(row.status)) return { outcome: "alreadyFinished", id: taskId, status: row.status };
    if (row.status === "running" && row.requested !== null) return { outcome: "cancelRequested", id: taskId };
  }
  throw new OrmqError(`cancelTask: task ${taskId} kept changing state; try again`);
}
