import { setTimeout as sleep } from "node:timers/promises";
import { BaseTaskEntity, type TaskErrorRecord } from "../../entities/BaseTaskEntity";
import type { Completion } from "../dialect";
import { CancelTask, HookTimeoutError, RetryPolicyError, SnoozeTask, TaskCancelledError, TaskTimeoutError, toError, WorkerShutdownError } from "../errors";
import type { AttemptAbort } from "./abort";
import { attemptCommitOf, type TaskContext } from "./context";
import { attemptOf, cancelled, failedForGood, handedBack, hookErrorRecord, retryLater, snoozed, succeeded, type Attempt } from "./outcome";
import { storableText } from "../storable";

/** After a timeout or cancel, how long run() on the event loop may take to settle before it counts as abandoned. */
export const SETTLE_AFTER_ABORT_MS = 50;

/** An attempt's outcome: the write that ends it, and what it means for the summary. */
export interface AttemptResult {
  completion: Completion;
  kind: "succeeded" | "retried" | "failed" | "handedBack" | "snoozed" | "cancelled";
  /** run() had not settled when a timeout or a cancel ended the attempt: it still runs. */
  abandonedRun?: Promise<unknown>;
}

/*
 * How one attempt's end becomes exactly one outcome. StartedAttempt (startedAttempt.ts) runs the
 * attempt: start the timeout → run() → and then one of these:
 *
 * - run() returned: `successOf` (the result kept; one that cannot be kept is a failure);
 * - run() threw, or a timeout, a cancel or the shutdown abort ended it: `endedOf` normalises it
 *   (success committed by ctx.transaction, shutdown, cancel, snooze, failure) → on failure: error()
 *   → shouldRetry() / the retry policy → retry, or failed() and give up.
 *
 * Neither throws: a throwing task or hook becomes an outcome, not a dead worker; and should
 * building the outcome itself fail, `lastResort` still gives the attempt one (see there).
 */

/** The outcome of a run() that returned `value`: its success, unless the value cannot be kept. */
export function successOf(task: BaseTaskEntity, attempt: Attempt, value: unknown, ctx: TaskContext, hookTimeoutMs: number): AttemptResult | Promise<AttemptResult> {
  try {
    return { completion: succeeded(attempt, value), kind: "succeeded" };
  } catch (thrown) {
    // The run happened but its result cannot be kept: JSON.stringify threw (a cycle, a BigInt),
    // or the result is over its size cap (a RangeError that says so).
    const err =
      thrown instanceof RangeError ? thrown : new TypeError(`run() returned a value that is not JSON-serializable: ${toError(thrown).message}`, { cause: thrown });
    return failure(task, err, ctx, hookTimeoutMs).catch((internal: unknown) => lastResort(task, internal, ctx));
  }
}

/**
 * The outcome of an attempt that ended by a throw, a timeout, a cancel or the shutdown abort.
 * `running` is run() itself, which may still go on; `settled` says whether it has.
 */
export function endedOf(
  task: BaseTaskEntity,
  thrown: unknown,
  ctx: TaskContext,
  abort: AttemptAbort,
  run: { running: Promise<unknown>; settled: () => boolean; onRunOver: () => void },
  hookTimeoutMs: number,
  settleAfterAbortMs: number,
): Promise<AttemptResult> {
  return ended(task, thrown, ctx, abort, run, hookTimeoutMs, settleAfterAbortMs).catch((internal: unknown) => lastResort(task, internal, ctx));
}

/** Starts run(): its promise, rejected when run() throws before its first await. */
export function startRun(task: BaseTaskEntity, ctx: TaskContext, runTask: ((task: BaseTaskEntity, ctx: TaskContext) => unknown) | undefined): Promise<unknown> {
  try {
    return Promise.resolve(runTask ? runTask(task, ctx) : task.run(ctx));
  } catch (thrown) {
    // Rejections carry what run() threw, an Error or not: toError() makes it one later, keeping it as cause.
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
    return Promise.reject(thrown);
  }
}

/**
 * Building the outcome failed (a bug here, or a value no check foresaw): the attempt still ends,
 * as a failure that retries with the default backoff while attempts remain, with what went wrong
 * as its error. Without this the task would sit `running` until its lease expired, its real error
 * lost. Only the simplest constructors are used, and they cannot throw on any error.
 */
export function lastResort(task: BaseTaskEntity, internal: unknown, ctx: TaskContext): AttemptResult {
  const err = toError(internal);
  try {
    ctx.logger.error({ err }, "internal error while building a task's outcome; the attempt counts as failed");
  } catch {
    // a logger that throws must not take the outcome with it
  }
  let retryAt: Date | null = null;
  try {
    if (task.attempts < task.maxAttempts) retryAt = BaseTaskEntity.retry(task.attempts, err);
  } catch {
    retryAt = null;
  }
  if (retryAt instanceof Date && !Number.isNaN(retryAt.getTime())) {
    return { completion: retryLater(attemptOf(task), err, retryAt.getTime() - Date.now()), kind: "retried" };
  }
  return { completion: failedForGood(attemptOf(task), err), kind: "failed" };
}

/** An attempt that ended by a throw, a timeout, a cancel or the shutdown abort. */
async function ended(
  task: BaseTaskEntity,
  thrown: unknown,
  ctx: TaskContext,
  abort: AttemptAbort,
  attempt: { running: Promise<unknown>; settled: () => boolean; onRunOver: () => void },
  hookTimeoutMs: number,
  settleAfterAbortMs: number,
): Promise<AttemptResult> {
  const { running } = attempt;
  // A run() that honours its signal settles a moment after the abort: give it that moment
  // before calling it abandoned.
  if (!attempt.settled()) await Promise.race([running.catch(() => undefined), sleep(settleAfterAbortMs)]);
  const abandonedRun = attempt.settled() ? undefined : running.catch(() => undefined);
  attempt.onRunOver();
  const result = await afterThrow(task, toError(thrown), ctx, abort, hookTimeoutMs);
  // A hook that hung and a run() that ignored its abort both still hold what they hold.
  const stillRunning = [abandonedRun, result.abandonedRun].filter((p): p is Promise<unknown> => p !== undefined);
  return { ...result, abandonedRun: stillRunning.length === 0 ? undefined : Promise.allSettled(stillRunning) };
}

async function afterThrow(task: BaseTaskEntity, err: Error, ctx: TaskContext, abort: AttemptAbort, hookTimeoutMs: number): Promise<AttemptResult> {
  // ctx.transaction committed the attempt's success (perhaps just as a timeout fired): that stands,
  // and no hook runs for what came after it.
  const commit = attemptCommitOf(ctx);
  if (commit) await commit.settled();
  if (commit?.committed) {
    ctx.logger.warn({ err }, "run() threw after ctx.transaction committed the attempt's success; the success stands");
    return { completion: succeeded(attemptOf(task), commit.result), kind: "succeeded" };
  }
  const reason: unknown = abort.reason;
  // Whatever run() threw once its signal aborted, the abort's reason is what happened.
  if (reason instanceof WorkerShutdownError) return { completion: handedBack(attemptOf(task)), kind: "handedBack" };
  // Cancelled on request: cancelTask already recorded the caller's reason.
  if (reason instanceof TaskCancelledError) return { completion: cancelled(attemptOf(task), null), kind: "cancelled" };
  if (err instanceof CancelTask) return { completion: cancelled(attemptOf(task), err.reason), kind: "cancelled" };
  if (err instanceof SnoozeTask) return { completion: snoozed(attemptOf(task), err.delayMs), kind: "snoozed" };
  return failure(task, reason instanceof TaskTimeoutError ? reason : err, ctx, hookTimeoutMs);
}

async function failure(task: BaseTaskEntity, err: Error, ctx: TaskContext, hookTimeoutMs: number): Promise<AttemptResult> {
  const cls = task.constructor as typeof BaseTaskEntity;
  const hookErrors: TaskErrorRecord[] = [];
  const hung: Promise<unknown>[] = [];
  // Each hook gets `hookTimeoutMs`: one that never settles would otherwise hold its slot (and the
  // task) until the worker stops. Past it the hook counts as having thrown, and keeps running.
  const hook = async <T>(name: string, call: () => T | Promise<T>): Promise<T | undefined> => {
    let timer: NodeJS.Timeout | undefined;
    const running = Promise.resolve().then(call);
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        hung.push(running.catch(() => undefined));
        reject(new HookTimeoutError(name, hookTimeoutMs));
      }, hookTimeoutMs);
    });
    try {
      return await Promise.race([running, deadline]);
    } catch (thrown) {
      const hookErr = toError(thrown);
      const what = hookErr instanceof HookTimeoutError ? "did not settle in time" : "threw";
      ctx.logger.error({ err: hookErr, hook: name }, `${name}() hook ${what}; the task's outcome stands`);
      hookErrors.push(hookErrorRecord(attemptOf(task), name, hookErr));
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  };

  ctx.logger.warn({ err }, "task attempt failed");
  if (task.error) await hook("error", () => task.error!(err, ctx));

  let retryAt: Date | null = null;
  if (task.attempts < task.maxAttempts) {
    const decision = task.shouldRetry ? await hook("shouldRetry", () => task.shouldRetry!(err, ctx)) : undefined;
    if (decision !== false) {
      const fallback = () => BaseTaskEntity.retry(task.attempts, err);
      let policyFailed = false;
      const planned = await hook("retry policy", async () => {
        try {
          const value: unknown = cls.retry(task.attempts, err);
          // A Date (a valid one) or null; anything else is the policy's failure, recorded as one.
          if (value === null || value === undefined || (value instanceof Date && !Number.isNaN(value.getTime()))) return value;
          throw new RetryPolicyError(`the retry policy returned ${storableText(describeValue(value), 200)}, not a Date or null`);
        } catch (policyErr) {
          policyFailed = true;
          throw policyErr;
        }
      });
      // A policy that throws or returns nonsense must not lose the task's remaining attempts.
      retryAt = policyFailed ? fallback() : (planned ?? null);
      // shouldRetry() said yes where the policy said no: use ormq's default backoff.
      if (decision === true && retryAt === null) retryAt = fallback();
    }
  }
  if (retryAt) {
    return { completion: retryLater(attemptOf(task), err, Math.max(0, retryAt.getTime() - Date.now()), hookErrors), kind: "retried", abandonedRun: hungHooks(hung) };
  }
  if (task.failed) await hook("failed", () => task.failed!(err, ctx));
  return { completion: failedForGood(attemptOf(task), err, hookErrors), kind: "failed", abandonedRun: hungHooks(hung) };
}

/** A value as a policy's error names it: its type, and the value when that is short. */
function describeValue(value: unknown): string {
  if (value instanceof Date) return "an invalid Date";
  try {
    return `${typeof value} ${typeof value === "string" ? JSON.stringify(value) : String(value)}`;
  } catch {
    return typeof value;
  }
}

/** Hooks that missed their deadline and still run: the worker counts them with abandoned runs. */
function hungHooks(hung: Promise<unknown>[]): Promise<unknown> | undefined {
  return hung.length === 0 ? undefined : Promise.allSettled(hung);
}
