import type { ValidationError } from "class-validator";
import type { ObjectLiteral } from "typeorm";
import { InvalidOptionError, TaskValidationError, type TaskValidationIssue } from "./errors";
import { MAX_DELAY_MS } from "./storable";

/**
 * Checks of what is enqueued. Option setters check at the call; the subscriber checks again at
 * insert (for values set any other way) and runs the task class's class-validator decorators.
 */

/**
 * Queue names: 1–100 letters, digits, `_`, `-`, `.` or `:`. (No `/`: a new-task announcement is
 * `queue/type`, split at the first slash; see client/announcements.ts.)
 */
export const QUEUE_NAME = /^[A-Za-z0-9_.:-]{1,100}$/;

export function checkQueue(queue: unknown, option = "queue"): string {
  if (typeof queue !== "string" || !QUEUE_NAME.test(queue)) {
    throw new InvalidOptionError(`${option} must be 1–100 letters, digits, "_", "-", "." or ":", got ${JSON.stringify(queue)}`);
  }
  return queue;
}

export function checkPriority(priority: unknown, option = "priority"): number {
  if (!Number.isInteger(priority) || Math.abs(priority as number) > 2 ** 31 - 1) {
    throw new InvalidOptionError(`${option} must be an integer (32-bit), got ${JSON.stringify(priority)}`);
  }
  return priority as number;
}

export function checkMaxAttempts(maxAttempts: unknown, option = "maxAttempts"): number {
  if (!Number.isInteger(maxAttempts) || (maxAttempts as number) < 1) {
    throw new InvalidOptionError(`${option} must be an integer of 1 or more, got ${JSON.stringify(maxAttempts)}`);
  }
  return maxAttempts as number;
}

export function checkDelay(ms: unknown, option = "delay"): number {
  // The due time is stored as epoch milliseconds in a bigint column and read back as a Date.
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0 || ms > MAX_DELAY_MS) {
    throw new InvalidOptionError(`${option} must be a number of milliseconds from 0 to ${MAX_DELAY_MS} (100 years), got ${String(ms)}`);
  }
  return ms;
}

export function checkTimeout(ms: unknown, option = "timeoutMs"): number | null {
  if (ms === null || ms === undefined) return null;
  // Timers cannot wait longer than 2^31-1 ms (about 24.8 days); a longer one would fire at once.
  if (!Number.isInteger(ms) || (ms as number) < 1 || (ms as number) > 2 ** 31 - 1) {
    throw new InvalidOptionError(`${option} must be a positive integer of milliseconds up to 2147483647, got ${JSON.stringify(ms)}`);
  }
  return ms as number;
}

export function checkRunAt(runAt: unknown, option = "runAt"): Date {
  if (!(runAt instanceof Date) || Number.isNaN(runAt.getTime())) {
    throw new InvalidOptionError(`${option} must be a valid Date, got ${runAt instanceof Date ? "Invalid Date" : JSON.stringify(runAt)}`);
  }
  return runAt;
}

/** The base fields of a task about to be inserted, after defaults were applied. */
export function checkTaskFields(task: ObjectLiteral, taskName: string): void {
  const where = (field: string) => `${taskName}.${field}`;
  checkQueue(task.queue, where("queue"));
  checkPriority(task.priority, where("priority"));
  checkMaxAttempts(task.maxAttempts, where("maxAttempts"));
  checkRunAt(task.runAt, where("runAt"));
  checkTimeout(task.timeoutMs, where("timeoutMs"));
}

/**
 * Runs the task class's class-validator decorators on an instance of that class (a plain object
 * from `insert()` is copied onto one first). A class with no decorators passes.
 */
export async function validateTask(task: ObjectLiteral, cls: { prototype: object; name: string }, typeKey: string): Promise<void> {
  if (!hasConstraints(cls)) return; // the usual case: nothing to check, so no work per enqueued row
  const instance = task instanceof (cls as unknown as new () => object) ? task : Object.assign(Object.create(cls.prototype), task);
  const errors = await classValidator().validate(instance, { forbidUnknownValues: false, validationError: { target: false } });
  if (errors.length > 0) throw new TaskValidationError(typeKey, flatten(errors));
}

const constrained = new WeakMap<object, boolean>();

/**
 * class-validator, loaded when a task class uses it: loading it costs 0.1-0.16 s of every process
 * start (a CLI command, a worker, a task process) that has nothing to validate.
 */
function classValidator(): typeof import("class-validator") {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require("class-validator") as typeof import("class-validator");
}

/** Whether class-validator has any constraint for this class or its parents (asked once per class). */
function hasConstraints(cls: { prototype: object }): boolean {
  // class-validator's decorators record their constraints in a storage on the global object (one
  // for every copy of class-validator): without it no class has any, and nothing is loaded to
  // learn that. Not remembered: a class's module may be loaded, with its decorators, later.
  if (!(globalThis as { classValidatorMetadataStorage?: unknown }).classValidatorMetadataStorage) return false;
  let known = constrained.get(cls);
  if (known === undefined) {
    // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- class-validator's own parameter type
    known = classValidator().getMetadataStorage().getTargetValidationMetadatas(cls as unknown as Function, "", true, false).length > 0;
    constrained.set(cls, known);
  }
  return known;
}

function flatten(errors: ValidationError[], prefix = ""): TaskValidationIssue[] {
  return errors.flatMap((e) => {
    const property = prefix + e.property;
    const own = e.constraints ? [{ property, value: e.value, constraints: e.constraints }] : [];
    return [...own, ...flatten(e.children ?? [], `${property}.`)];
  });
}

/** The largest task id: ids are 64-bit signed integers (`bigint`) on both databases. */
export const MAX_TASK_ID = 9_223_372_036_854_775_807n;

/**
 * A task id as the decimal text the queries bind: a positive 64-bit integer, given as a number
 * (a safe integer), a bigint, or a string of decimal digits. Anything else is refused before it
 * reaches the database, where PostgreSQL would throw on a value its `bigint` cannot hold and
 * SQLite would quietly match nothing. Leading zeros are dropped (`"007"` is task 7).
 */
export function checkTaskId(id: unknown, label = "task id"): string {
  let value: bigint | undefined;
  if (typeof id === "bigint") value = id;
  else if (typeof id === "number" && Number.isSafeInteger(id)) value = BigInt(id);
  else if (typeof id === "string" && /^[0-9]{1,25}$/.test(id)) value = BigInt(id);
  if (value === undefined || value < 1n || value > MAX_TASK_ID) {
    throw new InvalidOptionError(`${label} must be a positive 64-bit integer (1 to ${MAX_TASK_ID}), got ${shownValue(id)}`);
  }
  return value.toString();
}

/** A value for an error message: JSON (control characters escaped), cut to a readable length. */
function shownValue(value: unknown): string {
  let text: string;
  if (typeof value === "bigint") text = `${value}n`;
  else if (typeof value === "number" || typeof value === "boolean") text = String(value);
  else if (typeof value === "string" || value === null) text = JSON.stringify(value);
  else text = value === undefined ? "undefined" : `a value of type ${typeof value}`;
  return text.length > 60 ? `${text.slice(0, 60)}… (${text.length} characters)` : text;
}
