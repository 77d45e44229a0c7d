import type { DataSource } from "typeorm";
import { BaseTaskEntity, FINISHED_STATUSES } from "../../entities/BaseTaskEntity";
import type { CancelResult } from "../../entities/operations";
import { cancelPending, readTaskState, recordEvents, requestCancel } from "../dialect/taskWrites";
import { OrmqError } from "../errors";
import { MAX_MESSAGE_CHARS, storableText } from "../storable";
import { checkTaskId } from "../validation";
import { resolveDataSource } from "../dataSource";
import { ormqFor } from "../client/client";
import { settleDependents } from "../workflow/dependencies";

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
 * whatever the task's worker does meanwhile: a pending (or waiting) task becomes `cancelled`, and
 * its dependents are settled by their classes' `onDependencyFailure`; a running one gets
 * a cancel request that its worker (in any process) notices and acts on; a finished task is left
 * alone and reported as such.
 */
export async function cancelTask(id: string | number, options: CancelOptions = {}): Promise<CancelResult> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  const taskId = checkTaskId(id, "cancelTask(id)");
  // Stored as the last error and in the history: text both databases take (no NUL, no lone
  // surrogate), bounded like an error message.
  const reason = storableText(options.reason ?? "cancelled on request", MAX_MESSAGE_CHARS);
  const lastError = `cancelled: ${reason}`;
  const m = dataSource.manager;
  // A task can move between our statements (claimed, retried): go round again, a few times at most.
  for (let round = 0; round < 5; round++) {
    const now = new Date(await ormqFor(dataSource).clock.now());
    if (await cancelPending(m, taskId, lastError, now)) {
      const state = await readTaskState(m, taskId);
      if (state && ormqFor(dataSource).registry.recordsHistory(state.type)) {
        await recordEvents(m, [{ taskId, kind: "cancelled", at: now, error: lastError }]);
      }
      // Its dependents (a workflow) are settled as for any cancelled task.
      await settleDependents(ormqFor(dataSource), new Map([[taskId, "cancelled" as const]]));
      return { outcome: "cancelled", id: taskId };
    }
    // Its worker records the event when the task ends.
    if (await requestCancel(m, taskId, lastError, now)) return { outcome: "cancelRequested", id: taskId };
    const state = await readTaskState(m, taskId);
    if (!state) return { outcome: "notFound", id: taskId };
    if (FINISHED_STATUSES.includes(state.status)) return { outcome: "alreadyFinished", id: taskId, status: state.status };
    if (state.status === "running" && state.cancelRequested) return { outcome: "cancelRequested", id: taskId };
  }
  throw new OrmqError(`cancelTask: task ${taskId} kept changing state; try again`);
}
