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

/** A task class is declared in a way ormq cannot run (no discriminator key, no `run()`, …). */
export class TaskDefinitionError extends OrmqError {}

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
