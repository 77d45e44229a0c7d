import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import type { Completion } from "../dialect";
import { toError, WorkerShutdownError } from "../errors";
import type { TaskContext } from "./context";
import { failedForGood, handedBack, retryLater, succeeded } from "./outcome";

/** An attempt's outcome: the write that ends it, and what it means for the summary. */
export interface AttemptResult {
  completion: Completion;
  kind: "succeeded" | "retried" | "failed" | "handedBack";
}

/**
 * Runs one attempt and turns whatever happened into exactly one outcome:
 * run() → (on error: error() hook → retry or give up) → completion.
 * Never throws: a throwing task or hook becomes an outcome, not a dead worker.
 */
export async function executeAttempt(task: BaseTaskEntity, ctx: TaskContext): Promise<AttemptResult> {
  let value: unknown;
  try {
    value = await task.run(ctx);
  } catch (thrown) {
    return failure(task, toError(thrown), ctx);
  }
  let completion: Completion;
  try {
    completion = succeeded(task, value);
  } catch (thrown) {
    // JSON.stringify threw (a cycle, a BigInt): the run happened but its result cannot be kept.
    const err = new TypeError(`run() returned a value that is not JSON-serializable: ${toError(thrown).message}`, {
      cause: thrown,
    });
    return failure(task, err, ctx);
  }
  return { completion, kind: "succeeded" };
}

async function failure(task: BaseTaskEntity, err: Error, ctx: TaskContext): Promise<AttemptResult> {
  // Interrupted by shutdown: the task did nothing wrong, so the attempt is handed back uncounted.
  if (ctx.signal.aborted && ctx.signal.reason instanceof WorkerShutdownError) {
    return { completion: handedBack(task), kind: "handedBack" };
  }
  ctx.logger.warn({ err }, "task attempt failed");
  if (typeof task.error === "function") {
    try {
      await task.error(err, ctx);
    } catch (hookThrown) {
      ctx.logger.error({ err: toError(hookThrown) }, "error() hook threw; the attempt's outcome stands");
    }
  }
  if (task.attempts < task.maxAttempts) {
    const next = (task.constructor as typeof BaseTaskEntity).retry(task.attempts, err);
    if (next) return { completion: retryLater(task, err, Math.max(0, next.getTime() - Date.now())), kind: "retried" };
  }
  return { completion: failedForGood(task, err), kind: "failed" };
}
