import type { BaseTaskEntity, TaskErrorRecord } from "../../entities/BaseTaskEntity";
import type { Completion } from "../dialect";

/** How many of a task's most recent errors its `errors` list keeps. */
export const ERRORS_KEPT = 20;

/**
 * Small constructors for the one write that ends an attempt. Each outcome is exactly one
 * `Completion`, written by the completer with the same guard.
 */
export function succeeded(task: BaseTaskEntity, result: unknown): Completion {
  const remove = (task.constructor as { keepSucceeded?: boolean }).keepSucceeded === false;
  // The result is kept in the completion even when the row is to go: a row that another table
  // still references is kept after all (see Completion.remove).
  return base(task, "succeeded", { result: result === undefined ? null : JSON.stringify(result), event: "succeeded", remove });
}

/** The attempt failed and the task runs again after `delayMs`. */
export function retryLater(task: BaseTaskEntity, err: Error, delayMs: number, hookErrors: TaskErrorRecord[] = []): Completion {
  return base(task, "pending", { ...errorFields(task, err, hookErrors), delayMs, event: "retried" });
}

/** The attempt failed and the task gives up for good. */
export function failedForGood(task: BaseTaskEntity, err: Error, hookErrors: TaskErrorRecord[] = []): Completion {
  return base(task, "failed", { ...errorFields(task, err, hookErrors), event: "failed" });
}

/** The attempt did not really happen (shutdown): back to pending, the attempt not counted. */
export function handedBack(task: BaseTaskEntity): Completion {
  return base(task, "pending", { refundAttempt: true, event: "handed_back" });
}

/** run() asked to come back after `delayMs` (SnoozeTask): the attempt is not counted. */
export function snoozed(task: BaseTaskEntity, delayMs: number): Completion {
  return base(task, "pending", { refundAttempt: true, delayMs, event: "snoozed" });
}

/**
 * The task stops for good without retrying: CancelTask (with its reason), or a cancel request
 * while it ran (null: keep the reason cancelTask recorded).
 */
export function cancelled(task: BaseTaskEntity, reason: string | null): Completion {
  return base(task, "cancelled", { lastError: reason === null ? null : clean(`cancelled: ${reason}`), event: "cancelled" });
}

/** A hook's failure, kept in the task's error list next to the attempt's own error. */
export function hookErrorRecord(task: BaseTaskEntity, hook: string, err: Error): TaskErrorRecord {
  return { attempt: task.attempts, at: Date.now(), name: err.name, message: err.message, stack: err.stack, hook };
}

function base(task: BaseTaskEntity, status: Completion["status"], fields: Partial<Completion>): Completion {
  // Delays go into bigint columns: whole milliseconds only.
  if (fields.delayMs !== undefined && fields.delayMs !== null) fields.delayMs = Math.max(0, Math.round(fields.delayMs));
  return {
    id: task.id,
    attempt: task.attempts,
    status,
    result: null,
    lastError: null,
    errors: null,
    delayMs: null,
    refundAttempt: false,
    event: "succeeded",
    // A task that could not even be loaded has no class here: record its failure.
    history: (task.constructor as { history?: boolean }).history ?? true,
    remove: false,
    ...fields,
  };
}

function errorFields(task: BaseTaskEntity, err: Error, hookErrors: TaskErrorRecord[]): Pick<Completion, "lastError" | "errors"> {
  const record: TaskErrorRecord = {
    attempt: task.attempts,
    at: Date.now(),
    name: err.name,
    message: err.message,
    stack: err.stack,
  };
  const errors = [...(task.errors ?? []), record, ...hookErrors].slice(-ERRORS_KEPT);
  return { lastError: clean(err.stack ?? `${err.name}: ${err.message}`), errors: JSON.stringify(errors) };
}

/** PostgreSQL refuses U+0000 in text; an error message must not make its outcome unwritable. */
function clean(text: string): string {
  return text.replace(/\u0000/g, "\\0");
}
