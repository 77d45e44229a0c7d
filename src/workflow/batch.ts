import { BaseTaskEntity, WAITS_FOR } from "../../entities/BaseTaskEntity";
import { enqueueMany, type EnqueueManyOptions } from "../enqueue/enqueueMany";
import { DependencyError } from "../errors";

/** Options of `enqueueBatch`. */
export interface EnqueueBatchOptions extends EnqueueManyOptions {
  /**
   * A task that runs once, when every task of the batch has finished, whatever their outcome
   * (succeeded, failed for good, cancelled, deleted); `ctx.dependencyCounts()` gives how many
   * ended which way.
   */
  onComplete?: BaseTaskEntity;
}

/** What `enqueueBatch` enqueued. */
export interface EnqueuedBatch {
  /** The batch's tasks' ids, in the order given. */
  ids: string[];
  /** The callback's id, or null without one. */
  onCompleteId: string | null;
}

/**
 * Enqueues a batch of tasks, and a callback that runs once they have all finished. Everything
 * commits together, as with `enqueueMany` (in the caller's transaction with `{ manager }`).
 *
 * The callback is a dependent of every task of the batch that waits for their end rather than
 * their success (see workflow/dependencies.ts): a task's outcome marks its own edge, and the
 * callback is released by the last one's, with no row that every completion updates: a batch of
 * 100,000 is as cheap per task as a batch of ten.
 */
export async function enqueueBatch(tasks: readonly BaseTaskEntity[], options: EnqueueBatchOptions = {}): Promise<EnqueuedBatch> {
  const { onComplete, ...rest } = options;
  if (onComplete === undefined) return { ids: await enqueueMany(tasks, rest), onCompleteId: null };
  if (!(onComplete instanceof BaseTaskEntity)) throw new DependencyError("enqueueBatch: onComplete must be an instance of a task class (SomeTask.create({...}))");
  if (tasks.includes(onComplete)) throw new DependencyError("enqueueBatch: onComplete cannot be one of the batch's own tasks");
  onComplete.dependsOn = [...(onComplete.dependsOn ?? []), ...tasks];
  onComplete[WAITS_FOR] = "finish";
  const ids = await enqueueMany([...tasks, onComplete], rest);
  return { ids: ids.slice(0, -1), onCompleteId: ids[ids.length - 1] };
}
