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
import { CancelTask, RemoteTaskError, SnoozeTask, TaskCancelledError, TaskTimeoutError, toError, WorkerShutdownError } from "../../errors";

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

/** What a worker sends a task process (see taskProcesses/child.ts); `run` numbers the attempt. */
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
  /** The thrown error's class names below Error, most derived first (see RemoteTaskError). */
  classNames?: string[];
  /** Its own plain properties (`code`, `status`…): strings, finite numbers, booleans, null. */
  props?: Record<string, string | number | boolean | null>;
  snoozeMs?: number;
  cancelReason?: string;
  timeoutMs?: number;
}

export function toRecord(err: unknown): ErrorRecord {
  try {
    return recordOf(err);
  } catch {
    // A Proxy whose every trap throws cannot even be asked whether it is an Error.
    return { name: "Error", message: "(a thrown value that could not be read)" };
  }
}

function recordOf(err: unknown): ErrorRecord {
  const e = toError(err);
  // Read defensively: a thrown object's getters (or a Proxy) may throw, and this runs in the
  // task's process, where a throw here would lose the attempt's outcome.
  const read = (key: "name" | "message" | "stack"): string | undefined => {
    try {
      const value: unknown = e[key];
      return value === undefined ? undefined : String(value);
    } catch {
      return undefined;
    }
  };
  const thrownError = err instanceof Error;
  const record: ErrorRecord = {
    // A thrown string or object becomes a plain Error (its text as the message), not an OrmqError.
    name: thrownError ? (read("name") ?? "Error") : "Error",
    message: read("message") ?? "(an error whose message could not be read)",
    stack: read("stack"),
  };
  if (e instanceof SnoozeTask) record.snoozeMs = e.delayMs;
  if (e instanceof CancelTask) record.cancelReason = e.reason;
  if (e instanceof TaskTimeoutError) record.timeoutMs = e.timeoutMs;
  const classNames = thrownError ? classNamesOf(e) : [];
  if (classNames.length > 0) record.classNames = classNames;
  const props = plainProps(e);
  if (props) record.props = props;
  return record;
}

/** Bounds on what of an error crosses over: a thrown value can be anything. */
const MAX_CLASSES = 10;
const MAX_PROPS = 20;
const MAX_PROP_CHARS = 1_000;

/**
 * The names of an error's classes below Error, most derived first, down to the built-in one it
 * extends (`["NotFound", "HttpError"]`, `["BadInput", "TypeError"]`); none for Error itself or a
 * plain built-in one, which are rebuilt as such.
 */
function classNamesOf(e: Error): string[] {
  const names: string[] = [];
  try {
    for (let proto = Object.getPrototypeOf(e); proto && names.length < MAX_CLASSES; proto = Object.getPrototypeOf(proto)) {
      const ctor: unknown = Object.prototype.hasOwnProperty.call(proto, "constructor") ? proto.constructor : undefined;
      if (typeof ctor !== "function" || ctor === Error) break;
      if (Object.values(BUILT_IN).includes(ctor as ErrorConstructor)) {
        // A plain TypeError is rebuilt as one (no names); a class of yours below it names it too.
        if (names.length > 0) names.push(ctor.name);
        break;
      }
      if (ctor.name) names.push(String(ctor.name).slice(0, 200));
    }
  } catch {
    // A hostile prototype (a throwing getter): the names found so far.
  }
  return names;
}

/** An error's own enumerable properties that are plain values (`code`, `status`…), bounded. */
function plainProps(e: Error): ErrorRecord["props"] | undefined {
  let props: ErrorRecord["props"] | undefined;
  try {
    for (const key of Object.keys(e).slice(0, MAX_PROPS)) {
      if (key === "name" || key === "message" || key === "stack") continue;
      const value: unknown = (e as unknown as Record<string, unknown>)[key];
      const plain =
        value === null || typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value))
          ? value
          : typeof value === "string"
            ? value.slice(0, MAX_PROP_CHARS)
            : undefined;
      if (plain !== undefined) (props ??= {})[key.slice(0, 200)] = plain;
    }
  } catch {
    // A throwing getter: the properties read so far.
  }
  return props;
}

const BUILT_IN: Record<string, ErrorConstructor> = { TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError };

export function fromRecord(record: ErrorRecord): Error {
  let err: Error;
  if (record.snoozeMs !== undefined) err = new SnoozeTask(record.snoozeMs);
  else if (record.cancelReason !== undefined) err = new CancelTask(record.cancelReason);
  else if (record.timeoutMs !== undefined) err = new TaskTimeoutError(record.timeoutMs);
  else if (record.name === "TaskCancelledError") err = new TaskCancelledError();
  else if (record.name === "WorkerShutdownError") err = new WorkerShutdownError();
  else if (record.classNames && record.classNames.length > 0) err = new RemoteTaskError(record.name, record.message, record.classNames);
  else {
    err = new (BUILT_IN[record.name] ?? Error)(record.message);
    if (err.name !== record.name) err.name = record.name;
  }
  if (record.stack) err.stack = record.stack;
  for (const [key, value] of Object.entries(record.props ?? {})) {
    if (!(key in err)) (err as unknown as Record<string, unknown>)[key] = value;
  }
  return err;
}

/** The worker's side: a line from a thread or process, written to the attempt's logger or progress. */
export function relayLine(ctx: { logger: Logger; progress(fraction: number, message?: string): Promise<void> }, line: LogLine | ProgressLine): void {
  if ("progress" in line) ctx.progress(line.progress.fraction, line.progress.message ?? undefined).catch(() => undefined);
  else ctx.logger[line.level](line.obj, line.msg);
}
