/**
 * ormq's errors. Every error ormq throws extends `OrmqError`; a wrapped failure keeps the original
 * as `cause`, and no message of another library is rewritten.
 */
import { MAX_DELAY_MS } from "../storable";

export class OrmqError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    // Keep `instanceof` working when compiled to older targets.
    Object.setPrototypeOf(this, new.target.prototype);
  }
}

/** ormq is not set up in this DataSource (entities, subscribers) or an option is invalid. */
export class OrmqConfigurationError extends OrmqError {}

/** An option given to ormq is invalid; the message names it. */
export class InvalidOptionError extends OrmqConfigurationError {}

/** A task class is declared in a way ormq cannot run (no discriminator key, no `run()`, …). */
export class TaskDefinitionError extends OrmqError {}

/** One field of a task that failed validation, and the constraints it broke. */
export interface TaskValidationIssue {
  property: string;
  value: unknown;
  /** Constraint name → message, as class-validator reports them. */
  constraints: Record<string, string>;
}

/** A task failed validation at insert; nothing was written. `issues` lists every failure. */
export class TaskValidationError extends OrmqError {
  constructor(
    readonly taskType: string,
    readonly issues: TaskValidationIssue[],
  ) {
    const detail = issues.map((i) => `${i.property}: ${Object.values(i.constraints).join("; ")}`).join(" | ");
    super(`invalid ${taskType} task: ${detail}`);
  }
}

/**
 * An enqueue of a class with `unique = { onConflict: "error" }` met a task with the same key that
 * still holds it. Nothing was written, and the caller's transaction is intact.
 */
export class UniqueTaskError extends OrmqError {
  constructor(
    readonly taskType: string,
    /** The key's values by property. */
    readonly key: Record<string, unknown>,
    /** The id of the task that holds the key, when it could be read. */
    readonly standingId: string | null,
  ) {
    super(`a ${taskType} task with the same unique key ${JSON.stringify(key)} already exists${standingId ? ` (task ${standingId})` : ""}`);
  }
}

/**
 * Throw from run() to come back later without using an attempt:
 * `throw new SnoozeTask(60_000)`. The error() hook is not called.
 */
export class SnoozeTask extends OrmqError {
  constructor(readonly delayMs: number) {
    super(`snoozed for ${delayMs} ms`);
    // A due time is stored in a bigint column and read back as a Date: bounded well inside both.
    if (typeof delayMs !== "number" || !Number.isFinite(delayMs) || delayMs < 0 || delayMs > MAX_DELAY_MS) {
      throw new InvalidOptionError(`SnoozeTask: delayMs must be a number of milliseconds from 0 to ${MAX_DELAY_MS} (100 years), got ${String(delayMs)}`);
    }
  }
}

/**
 * Throw from run() to stop the task for good without retrying: it ends `cancelled`.
 * The error() and failed() hooks are not called.
 */
export class CancelTask extends OrmqError {
  constructor(readonly reason = "cancelled by the task") {
    super(reason);
  }
}

/** The reason a task's signal aborts when it runs past its time limit; the attempt fails with it. */
export class TaskTimeoutError extends OrmqError {
  constructor(readonly timeoutMs: number) {
    super(`the task ran longer than its ${timeoutMs} ms limit`);
  }
}

/**
 * A process task's child process ended while it ran the attempt: a native crash, `process.exit()`,
 * a kill from outside. The attempt fails with it (and is retried per the task's policy); the pool
 * starts another process.
 */
export class TaskProcessExitError extends OrmqError {
  constructor(
    readonly exitCode: number | null,
    readonly signal: string | null,
    options?: { cause?: unknown },
  ) {
    super(
      signal !== null || exitCode !== null
        ? `the task's process ended while it ran: ${signal ? `killed by ${signal}` : `exit code ${exitCode}`}`
        : "the task's process could not be started or was lost (see the cause)",
      options,
    );
  }
}

/**
 * A process task ran past its `static memoryLimitMb`: its process ran out of the heap it was given
 * and was ended. The attempt fails with it (and is retried per the task's policy).
 */
export class TaskMemoryLimitError extends OrmqError {
  constructor(readonly limitMb: number) {
    super(`the task ran past its memory limit of ${limitMb} MB (its process ran out of heap)`);
  }
}

/**
 * A hook (`error()`, `shouldRetry()`, `failed()`, the retry policy) that did not settle within the
 * worker's `hookTimeoutMs`: recorded like a hook that threw, and the task's outcome stands.
 */
export class HookTimeoutError extends OrmqError {
  constructor(
    readonly hook: string,
    readonly timeoutMs: number,
  ) {
    super(`${hook}() did not settle within ${timeoutMs} ms`);
  }
}

/**
 * The reason a task's signal aborts when someone cancels it while it runs; and what
 * `waitForResult` rejects with when the task it waits for was cancelled (`taskId` set).
 */
export class TaskCancelledError extends OrmqError {
  constructor(
    readonly reason = "cancelled on request",
    readonly taskId?: string,
  ) {
    super(reason);
  }
}

/** `waitForResult`: the task failed for good. `cause` is its last error, rebuilt from the stored one. */
export class TaskFailedError extends OrmqError {
  constructor(
    readonly taskId: string,
    cause: Error,
  ) {
    super(`task ${taskId} failed: ${cause.message}`, { cause });
  }
}

/** `waitForResult`: the wait timed out. The task goes on. */
export class WaitTimeoutError extends OrmqError {
  constructor(
    readonly taskId: string,
    readonly timeoutMs: number,
  ) {
    super(`task ${taskId} did not finish within ${timeoutMs} ms of waiting (it goes on)`);
  }
}

/**
 * The database refused to store an attempt's outcome for its content (SQLSTATE class 22 or 23, or
 * SQLite's equivalents): recorded as the task's last error in a minimal outcome written instead,
 * which keeps the decision (retry, failure) that was made.
 */
export class OutcomeWriteError extends OrmqError {}

/**
 * A retry policy returned something other than a `Date` or `null`: recorded like a policy that
 * threw, and the default backoff is used so the task keeps its remaining attempts.
 */
export class RetryPolicyError extends OrmqError {}

/**
 * `ctx.transaction` could not record the attempt's success: the attempt no longer holds its task
 * (the lease expired and the rescue returned it, or the task was cancelled). The transaction is
 * rolled back, so none of its writes, and none of the children given to `ctx.enqueue`, exist.
 */
export class AttemptLostError extends OrmqError {
  constructor(readonly taskId: string) {
    super(`task ${taskId}: this attempt no longer holds the task (its lease expired, or it was cancelled); the transaction was rolled back`);
  }
}

/**
 * A task's `dependsOn` was refused at enqueue: not a list of tasks or ids, a task that does not
 * exist or is not saved, or a cycle. Nothing of the enqueuing transaction commits.
 */
export class DependencyError extends OrmqError {}

/**
 * A misuse of `ctx.transaction` or `ctx.enqueue`: called after the attempt's success was
 * committed, or in a thread or task process, where the attempt's outcome is the worker's to write;
 * or a `ctx.transaction` whose connection the database ended (left idle for a whole lease, or
 * cut), so that nothing of it committed.
 */
export class AttemptCommitError extends OrmqError {}

/** The worker stopped claiming because too many timed-out runs never settled; restart it. */
export class WorkerNeedsRestartError extends OrmqError {}

/** The reason a task's signal aborts when its worker shuts down and the grace period is over. */
export class WorkerShutdownError extends OrmqError {
  constructor(message = "the worker is shutting down") {
    super(message);
  }
}


/**
 * An error thrown in a thread or a task process whose class the worker cannot rebuild (a class of
 * your own): it keeps the thrown error's `name`, `message`, `stack` and plain own properties
 * (`code`, `status`…), and the names of its classes, most derived first. `errorIs` and
 * `retryOn` match it by those names, as `instanceof` would have matched the original.
 */
export class RemoteTaskError extends OrmqError {
  constructor(
    name: string,
    message: string,
    /** The thrown error's class names, most derived first (`["NotFound", "HttpError"]`). */
    readonly classNames: readonly string[],
  ) {
    super(message);
    this.name = name; // the thrown error's, not this class's (OrmqError set its own)
  }
}

/**
 * A task's worker stopped renewing its lease (it died, froze or lost the database) and the rescue
 * returned the task to the queue: recorded as the attempt's error, and the cause of a
 * `TaskFailedError` when that was its last attempt.
 */
export class WorkerLostError extends OrmqError {}

/**
 * Whether `error` is an instance of `cls`, or was one where it was thrown: a `RemoteTaskError`
 * from a thread or a task process whose class, or one of its parents, has `cls`'s name.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function errorIs(error: unknown, cls: abstract new (...args: any[]) => Error): boolean {
  return error instanceof cls || (error instanceof RemoteTaskError && error.classNames.includes(cls.name));
}

/** Turns anything thrown into an Error, keeping the original as `cause` when it was not one. */
export function toError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  let text: string;
  try {
    text = typeof thrown === "string" ? thrown : JSON.stringify(thrown);
  } catch {
    try {
      text = String(thrown);
    } catch {
      text = Object.prototype.toString.call(thrown); // a toString that throws, too
    }
  }
  return new OrmqError(`non-Error thrown: ${text}`, { cause: thrown });
}
