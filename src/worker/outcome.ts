import type { BaseTaskEntity, TaskErrorRecord } from "../../entities/BaseTaskEntity";
import type { Completion } from "../dialect";
import { OutcomeWriteError } from "../errors";
import { boundedJsonList, ERRORS_KEPT, MAX_DELAY_MS, MAX_MESSAGE_CHARS, MAX_NAME_CHARS, MAX_RESULT_BYTES, MAX_STACK_CHARS, storableText, utf8Bytes } from "../storable";

/**
 * What an outcome is built from: the attempt, and what the task's class says of it. Built from a
 * loaded task by `attemptOf`, or from a claimed row alone (a task handed back before it started,
 * or one that could not be loaded).
 */
export interface Attempt {
  id: string;
  /** The task's `attempts` at claim. */
  attempts: number;
  /** The task's stored errors: anything a row can hold (only a list is carried on). */
  errors?: unknown;
  /** Record the outcome's event (the class's `static history`; true when the class is unknown). */
  history: boolean;
  /** Delete the row on success (a class with `keepSucceeded = false`). */
  removeOnSuccess?: boolean;
}

/** The attempt of a loaded task. */
export function attemptOf(task: BaseTaskEntity): Attempt {
  const cls = task.constructor as { history?: boolean; keepSucceeded?: boolean };
  return { id: task.id, attempts: task.attempts, errors: task.errors, history: cls.history ?? true, removeOnSuccess: cls.keepSucceeded === false };
}

/**
 * Small constructors for the one write that ends an attempt. Each outcome is exactly one
 * `Completion`, written by the completer with the same guard.
 */
export function succeeded(attempt: Attempt, result: unknown): Completion {
  const remove = attempt.removeOnSuccess === true;
  // JSON.stringify escapes NUL and lone surrogates, so any result it accepts is storable text
  // that reads back exactly; only its size needs a bound. Throws (a cycle, a BigInt, too large):
  // the executor fails the attempt with that error.
  const json = result === undefined ? null : (JSON.stringify(result) ?? null);
  if (json !== null && json.length > MAX_RESULT_BYTES / 3 && utf8Bytes(json) > MAX_RESULT_BYTES) {
    throw new RangeError(`run() returned ${utf8Bytes(json)} bytes of JSON, more than the ${MAX_RESULT_BYTES} bytes a result may hold`);
  }
  // The result is kept in the completion even when the row is to go: a row that another table
  // still references is kept after all (see Completion.remove).
  return base(attempt, "succeeded", { result: json, event: "succeeded", remove });
}

/** The attempt failed and the task runs again after `delayMs`. */
export function retryLater(attempt: Attempt, err: Error, delayMs: number, hookErrors: TaskErrorRecord[] = []): Completion {
  return base(attempt, "pending", { ...errorFields(attempt, err, hookErrors), delayMs, event: "retried" });
}

/** The attempt failed and the task gives up for good. */
export function failedForGood(attempt: Attempt, err: Error, hookErrors: TaskErrorRecord[] = []): Completion {
  return base(attempt, "failed", { ...errorFields(attempt, err, hookErrors), event: "failed" });
}

/** The attempt did not really happen (shutdown): back to pending, the attempt not counted. */
export function handedBack(attempt: Attempt): Completion {
  return base(attempt, "pending", { refundAttempt: true, event: "handed_back" });
}

/** run() asked to come back after `delayMs` (SnoozeTask): the attempt is not counted. */
export function snoozed(attempt: Attempt, delayMs: number): Completion {
  return base(attempt, "pending", { refundAttempt: true, delayMs, event: "snoozed" });
}

/**
 * The task stops for good without retrying: CancelTask (with its reason), or a cancel request
 * while it ran (null: keep the reason cancelTask recorded).
 */
export function cancelled(attempt: Attempt, reason: string | null): Completion {
  return base(attempt, "cancelled", { lastError: reason === null ? null : `cancelled: ${storableText(reason)}`, event: "cancelled" });
}

/**
 * What is written instead of a completion the database refused for its content: the same decision
 * (a retry stays a retry, a failure a failure; a refused success becomes a failure, since running
 * it again would most likely produce the same unstorable outcome and repeat its side effects), no
 * result, the stored `errors` left as they are, and `last_error` saying what was refused.
 * `minimal`: a second fallback, with nothing from the refused outcome or its error in it.
 */
export function fallbackOf(c: Completion, refused: unknown, minimal = false): Completion {
  const detail = minimal ? "" : `: ${describeRefusal(refused)}`;
  const lastError = `${OutcomeWriteError.name}: the database refused this attempt's outcome (${c.event})${detail}`;
  const gaveUp = c.status === "succeeded";
  return {
    ...c,
    status: gaveUp ? "failed" : c.status,
    event: gaveUp ? "failed" : c.event,
    result: null,
    lastError: storableText(lastError, MAX_STACK_CHARS),
    errors: null,
    remove: false,
  };
}

function describeRefusal(err: unknown): string {
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  const text = storableText(message, 500).split("\n")[0];
  return code === undefined ? text : `${storableText(code, 40)} ${text}`;
}

/** A hook's failure, kept in the task's error list next to the attempt's own error. */
export function hookErrorRecord(attempt: Attempt, hook: string, err: Error): TaskErrorRecord {
  return { ...errorRecord(attempt, err), hook: storableText(hook, MAX_NAME_CHARS) };
}

/**
 * One error as kept in `errors`: storable text (see storable.ts), each field bounded. Reads the
 * error's fields defensively: `name`, `message` and `stack` may be anything, even getters that throw.
 */
function errorRecord(attempt: Attempt, err: Error): TaskErrorRecord {
  const name = storableText(field(err, "name") ?? "Error", MAX_NAME_CHARS);
  const message = storableText(field(err, "message") ?? "", MAX_MESSAGE_CHARS);
  const stack = field(err, "stack");
  const record: TaskErrorRecord = { attempt: attempt.attempts, at: Date.now(), name, message };
  if (typeof stack === "string") record.stack = storableText(stack, MAX_STACK_CHARS);
  return record;
}

/** A property of a thrown value, or undefined if reading it throws. */
function field(err: unknown, key: "name" | "message" | "stack"): unknown {
  try {
    return (err as Record<string, unknown> | null)?.[key] ?? undefined;
  } catch {
    return undefined;
  }
}

function base(attempt: Attempt, status: Completion["status"], fields: Partial<Completion>): Completion {
  // Delays go into bigint columns: whole milliseconds, within what a due time can hold. (The
  // public ways to ask for one are checked where they are given; this is the last line.)
  if (fields.delayMs !== undefined && fields.delayMs !== null) fields.delayMs = clampDelay(fields.delayMs);
  return {
    id: attempt.id,
    attempt: attempt.attempts,
    status,
    result: null,
    lastError: null,
    errors: null,
    delayMs: null,
    refundAttempt: false,
    event: "succeeded",
    history: attempt.history,
    remove: false,
    ...fields,
  };
}

function errorFields(attempt: Attempt, err: Error, hookErrors: TaskErrorRecord[]): Pick<Completion, "lastError" | "errors"> {
  const record = errorRecord(attempt, err);
  // The stored list may be anything a row can hold: only a list of records is carried on.
  const before = Array.isArray(attempt.errors) ? attempt.errors : [];
  const errors = boundedJsonList([...before, record, ...hookErrors].slice(-ERRORS_KEPT));
  return { lastError: record.stack ?? `${record.name}: ${record.message}`, errors };
}

/** A delay in whole milliseconds from 0 to MAX_DELAY_MS; anything else (NaN) is 0. */
export function clampDelay(ms: number): number {
  if (!(ms > 0)) return 0;
  return Math.min(MAX_DELAY_MS, Math.round(ms));
}
