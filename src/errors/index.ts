/**
 * ormq's errors. Every error ormq throws extends `OrmqError`; a wrapped failure keeps the original
 * as `cause`, and no message of another library is rewritten.
 */
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
 * Throw from run() to come back later without using an attempt:
 * `throw new SnoozeTask(60_000)`. The error() hook is not called.
 */
export class SnoozeTask extends OrmqError {
  constructor(readonly delayMs: number) {
    super(`snoozed for ${delayMs} ms`);
    if (!Number.isFinite(delayMs) || delayMs < 0) throw new InvalidOptionError(`SnoozeTask: delayMs must be 0 or more, got ${delayMs}`);
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

/** The reason a task's signal aborts when someone cancels it while it runs. */
export class TaskCancelledError extends OrmqError {
  constructor(readonly reason = "cancelled on request") {
    super(reason);
  }
}

/** The worker stopped claiming because too many timed-out runs never settled; restart it. */
export class WorkerNeedsRestartError extends OrmqError {}

/** The reason a task's signal aborts when its worker shuts down and the grace period is over. */
export class WorkerShutdownError extends OrmqError {
  constructor(message = "the worker is shutting down") {
    super(message);
  }
}


/** Turns anything thrown into an Error, keeping the original as `cause` when it was not one. */
export function toError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  let text: string;
  try {
    text = typeof thrown === "string" ? thrown : JSON.stringify(thrown);
  } catch {
    text = String(thrown);
  }
  return new OrmqError(`non-Error thrown: ${text}`, { cause: thrown });
}
