/**
 * What crosses between a worker and the threads or child processes that run its tasks' run().
 * Errors cannot cross as themselves (the structured clone keeps only built-in error types), so
 * they travel as records and are rebuilt on the other side: SnoozeTask and CancelTask keep their
 * meaning, and a thrown TypeError is still a TypeError for retry policies such as
 * `retryOn(TypeError)`.
 */
import type { MessagePort } from "node:worker_threads";
import type { TaskRow } from "../../dialect";
import type { Logger } from "../../logger";
import { CancelTask, SnoozeTask, TaskCancelledError, TaskTimeoutError, WorkerShutdownError } from "../../errors";

/** One attempt, as sent to a thread or a child process. */
export interface RemoteTask {
  /** The claimed row, hydrated again there by that side's own DataSource. */
  row: TaskRow;
  type: string;
  module: string;
  attempt: number;
  workerId: string;
}

/** One attempt, as sent to a thread. */
export interface ThreadTask extends RemoteTask {
  /** Brings the abort reason to the thread when the attempt's signal aborts; takes log lines back. */
  port: MessagePort;
}

/** A line the task logged in its thread, for the worker's logger. */
export interface LogLine {
  level: "debug" | "info" | "warn" | "error";
  obj: Record<string, unknown>;
  msg?: string;
}

/** A progress report the task made in its thread (checked there), for the worker to record. */
export interface ProgressLine {
  progress: { fraction: number; message: string | null };
}

export type RemoteReply = { ok: true; value: unknown } | { ok: false; error: ErrorRecord };

/** A thread's last message on an attempt's port: every line before it has arrived. */
export const PORT_END = { end: true } as const;

/** What a worker sends a task process (see processes/child.ts); `run` numbers the attempt. */
export type ToChild = { kind: "run"; run: number; task: RemoteTask } | { kind: "abort"; run: number; reason: ErrorRecord };

/** What a task process sends back: an attempt's lines, and its reply with what the process now holds. */
export type FromChild =
  | { kind: "line"; run: number; line: LogLine | ProgressLine }
  | { kind: "reply"; run: number; reply: RemoteReply; memory: { rssBytes: number; heapUsedBytes: number } };

/**
 * After an attempt's signal aborts (timeout, cancel, shutdown), how long run() in a thread or a
 * process has to notice before its thread is terminated or its process killed. CPU-bound code
 * often never looks at its signal: ending it is the only way to get the CPU back.
 */
export const TERMINATE_AFTER_ABORT_MS = 1_000;

/**
 * How long the executor waits for such a run to settle after the abort before calling it
 * abandoned: the termination, plus a margin for a loaded machine. It is sure to end.
 */
export const REMOTE_SETTLE_AFTER_ABORT_MS = TERMINATE_AFTER_ABORT_MS + 2_000;

export interface ErrorRecord {
  name: string;
  message: string;
  stack?: string;
  snoozeMs?: number;
  cancelReason?: string;
  timeoutMs?: number;
}

export function toRecord(err: unknown): ErrorRecord {
  const e = err instanceof Error ? err : new Error(String(err));
  const record: ErrorRecord = { name: e.name, message: e.message, stack: e.stack };
  if (e instanceof SnoozeTask) record.snoozeMs = e.delayMs;
  if (e instanceof CancelTask) record.cancelReason = e.reason;
  if (e instanceof TaskTimeoutError) record.timeoutMs = e.timeoutMs;
  return record;
}

const BUILT_IN: Record<string, ErrorConstructor> = { TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError };

export function fromRecord(record: ErrorRecord): Error {
  let err: Error;
  if (record.snoozeMs !== undefined) err = new SnoozeTask(record.snoozeMs);
  else if (record.cancelReason !== undefined) err = new CancelTask(record.cancelReason);
  else if (record.timeoutMs !== undefined) err = new TaskTimeoutError(record.timeoutMs);
  else if (record.name === "TaskCancelledError") err = new TaskCancelledError();
  else if (record.name === "WorkerShutdownError") err = new WorkerShutdownError();
  else {
    err = new (BUILT_IN[record.name] ?? Error)(record.message);
    if (err.name !== record.name) err.name = record.name;
  }
  if (record.stack) err.stack = record.stack;
  return err;
}

/** The worker's side: a line from a thread or process, written to the attempt's logger or progress. */
export function relayLine(ctx: { logger: Logger; progress(fraction: number, message?: string): Promise<void> }, line: LogLine | ProgressLine): void {
  if ("progress" in line) ctx.progress(line.progress.fraction, line.progress.message ?? undefined).catch(() => undefined);
  else ctx.logger[line.level](line.obj, line.msg);
}
