/**
 * Waiting for tasks to finish from the code that enqueued them (`waitForResult`). One waiter per
 * DataSource polls the tasks waited for with one query per POLL_MS (in chunks of CHUNK ids), on
 * the DataSource's own pool: however many waits are open, they hold at most one connection at a
 * time, and with none open nothing runs. Polling rather than a notification per completion: a
 * drain nobody waits on pays nothing, and it works the same on SQLite, on PostgreSQL, and behind
 * a transaction pooler (where LISTEN does not).
 *
 * While a wait is open its poll timer holds the process (a wait is something the program is
 * doing: a script's `await task.waitForResult()` must not end with the event loop empty); with
 * none open nothing is left behind. A read that fails is logged and made again at the next poll;
 * one that fails while the database answers is split until the ids it fails on are found, and only
 * their waits are rejected.
 */
import type { DataSource } from "typeorm";
import type { TaskProgress, WaitOptions, WaitResult } from "../../entities/operations";
import { readOutcomes, type OutcomeRow } from "../dialect/taskReads";
import { InvalidOptionError, OrmqError, toError, TaskCancelledError, TaskFailedError, WaitTimeoutError, WorkerLostError } from "../errors";
import { getDefaultLogger, type Logger } from "../logger";
import { MAX_TIMER_MS } from "../storable";
import { MAX_TASK_ID } from "../validation";

/** How often the tasks waited for are read: an outcome is seen within this of its commit. */
export const POLL_MS = 500;

/** Ids per query. */
const CHUNK = 500;

/** A valid id that reads nothing: whether the database answers the read at all. */
const PROBE_ID = MAX_TASK_ID.toString();

interface Wait {
  resolve: (result: WaitResult) => void;
  reject: (err: Error) => void;
  onProgress?: (progress: TaskProgress) => void;
  /** The progress last delivered, as `fraction|message`. */
  seen?: string;
  /** `reads` when the wait was made: a read numbered above it began after the call. */
  madeAt: number;
  /** A read begun after the call has ended (read or failed): from then on the timeout may fire. */
  read: boolean;
  /** Set when the timeout fired before that read: the read decides, then the wait times out. */
  overdue?: () => void;
}

export class ResultWaiter {
  private readonly waits = new Map<string, Set<Wait>>();
  private looping = false;
  private wakeUp: (() => void) | undefined;
  private sleeping: NodeJS.Timeout | undefined;
  private lastPoll = 0;
  /** Polls begun so far. */
  private reads = 0;
  /** Reads are failing (logged once, and once more when they work again). */
  private failing = false;
  /** Where failed reads are reported: ormq's default logger (a test may give its own). */
  logger: Logger = getDefaultLogger();

  /** One per DataSource, made by its client (`ormqFor(dataSource).waiter`). */
  constructor(private readonly dataSource: DataSource) {}

  /** Waits for task `id` (a checked id: the decimal text of a positive 64-bit integer). */
  wait(id: string, options: WaitOptions): Promise<WaitResult> {
    const { timeoutMs, signal, onProgress } = options;
    if (timeoutMs !== undefined && !(Number.isSafeInteger(timeoutMs) && timeoutMs >= 0 && timeoutMs <= MAX_TIMER_MS)) {
      throw new InvalidOptionError(`waitForResult: timeoutMs must be an integer from 0 to ${MAX_TIMER_MS}, got ${JSON.stringify(timeoutMs)}`);
    }
    if (onProgress !== undefined && typeof onProgress !== "function") throw new InvalidOptionError("waitForResult: onProgress must be a function");
    if (signal?.aborted) return Promise.reject(toError(signal.reason));
    return new Promise<WaitResult>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let done = false;
      const onAbort = () => finish(() => reject(toError(signal!.reason)));
      const finish = (settle: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.remove(id, wait);
        settle();
      };
      const wait: Wait = {
        resolve: (result) => finish(() => resolve(result)),
        reject: (err) => finish(() => reject(toError(err))),
        onProgress,
        madeAt: this.reads,
        read: false,
      };
      if (timeoutMs !== undefined) {
        // The outcome is read at least once before a timeout: `timeoutMs: 0` on a task that
        // already finished resolves. A timer that fires first leaves the decision to that read.
        timer = setTimeout(() => {
          const timeOut = () => wait.reject(new WaitTimeoutError(id, timeoutMs));
          if (wait.read) timeOut();
          else wait.overdue = timeOut;
        }, timeoutMs);
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      let set = this.waits.get(id);
      if (!set) this.waits.set(id, (set = new Set()));
      set.add(wait);
      this.kick();
    });
  }

  private remove(id: string, wait: Wait): void {
    const set = this.waits.get(id);
    if (!set) return;
    set.delete(wait);
    if (set.size === 0) this.waits.delete(id);
    // The last wait ended: the poll timer must not hold the process any longer.
    if (this.waits.size === 0) {
      clearTimeout(this.sleeping);
      this.wakeUp?.();
    }
  }

  /** A new wait: poll soon (so a task already finished resolves at once), or start polling. */
  private kick(): void {
    if (!this.looping) {
      this.looping = true;
      void this.loop();
    } else if (Date.now() - this.lastPoll > 50) {
      this.wakeUp?.();
    }
  }

  private async loop(): Promise<void> {
    // Waits made in the same turn (waitForResults of many ids) share the first read.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.waits.size > 0) {
      this.lastPoll = Date.now();
      await this.poll();
      if (this.waits.size === 0) break;
      // Not unref()'d: an open wait keeps the process alive (remove() ends the sleep with the last).
      await new Promise<void>((resolve) => {
        this.wakeUp = resolve;
        this.sleeping = setTimeout(resolve, POLL_MS);
      });
      clearTimeout(this.sleeping);
      this.wakeUp = this.sleeping = undefined;
    }
    this.looping = false;
    if (this.waits.size > 0) this.kick(); // a wait made as the loop ended
  }

  private async poll(): Promise<void> {
    const seq = ++this.reads;
    const ids = [...this.waits.keys()];
    try {
      for (let i = 0; i < ids.length; i += CHUNK) {
        const chunk = ids.slice(i, i + CHUNK);
        if (!(await this.read(chunk))) return;
      }
      if (this.failing) this.logger.info({}, "waitForResult: the tasks waited for are read again");
      this.failing = false;
    } finally {
      // Every wait made before this poll began has now had its read (or its failure).
      for (const waits of this.waits.values()) {
        for (const wait of [...waits]) {
          if (wait.madeAt >= seq || wait.read) continue;
          wait.read = true;
          wait.overdue?.();
        }
      }
    }
  }

  /**
   * Reads `ids` and settles their waits. A read that fails while the database answers is split in
   * halves until the ids it fails on are found: their waits are rejected, naming the id, and the
   * others are settled as usual. Returns false when the database does not answer (nothing is
   * rejected: the waits go on, and are read again at the next poll; their timeouts still run).
   */
  private async read(ids: string[]): Promise<boolean> {
    let failure: unknown;
    try {
      this.deliver(ids, await readOutcomes(this.dataSource, ids));
      return true;
    } catch (err) {
      failure = err;
    }
    if (!(await this.answers(failure, ids.length))) return false;
    if (ids.length > 1) {
      const half = Math.ceil(ids.length / 2);
      return (await this.read(ids.slice(0, half))) && (await this.read(ids.slice(half)));
    }
    // One id, and the database answers: read it once more, so that a failure of the moment (a
    // connection cut, a deadlock) does not end the wait.
    const [id] = ids;
    try {
      this.deliver(ids, await readOutcomes(this.dataSource, ids));
      return true;
    } catch (err) {
      const error = new OrmqError(`waitForResult: task ${id}'s outcome cannot be read: ${toError(err).message}`, { cause: err });
      this.logger.warn({ taskId: id, err }, "waitForResult: a task's outcome cannot be read; its waits are rejected, the others go on");
      for (const wait of [...(this.waits.get(id) ?? [])]) wait.reject(error);
      return true;
    }
  }

  /**
   * Whether the database answers the same read for an id no row has in practice (the largest id)
   * after a read failed: then the failure is the ids'. If not, says so once.
   */
  private async answers(failure: unknown, count: number): Promise<boolean> {
    try {
      await readOutcomes(this.dataSource, [PROBE_ID]);
      return true;
    } catch {
      if (!this.failing) {
        this.logger.warn({ err: failure, ids: count }, "waitForResult: reading the tasks waited for failed; the waits go on, read again at each poll");
      }
      this.failing = true;
      return false;
    }
  }

  private deliver(ids: readonly string[], rows: OutcomeRow[]): void {
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const id of ids) {
      const waits = this.waits.get(id);
      if (!waits) continue;
      for (const wait of [...waits]) settle(id, byId.get(id), wait);
    }
  }
}

/** Delivers what a read of the task says to one wait: progress, and the outcome once finished. */
function settle(id: string, row: OutcomeRow | undefined, wait: Wait): void {
  try {
    if (!row) return wait.resolve({ id, result: undefined, deleted: true });
    deliverProgress(id, row, wait);
    switch (row.status) {
      case "succeeded":
        return wait.resolve({ id, result: parseJson(row.result), deleted: false });
      case "failed":
        return wait.reject(new TaskFailedError(id, lastError(row)));
      case "cancelled":
        return wait.reject(new TaskCancelledError(typeof row.last_error === "string" && row.last_error ? row.last_error : "cancelled", id));
      default:
        return; // pending (a retry) or running: go on waiting
    }
  } catch (err) {
    // A row that cannot be read (its result is not JSON) ends this wait alone, with the reason.
    wait.reject(new OrmqError(`waitForResult: task ${id}'s stored outcome cannot be read`, { cause: err }));
  }
}

function deliverProgress(id: string, row: OutcomeRow, wait: Wait): void {
  if (!wait.onProgress || row.progress === null || row.progress === undefined) return;
  const fraction = Number(row.progress);
  const message = typeof row.progress_message === "string" ? row.progress_message : null;
  const seen = `${fraction}|${message}`;
  if (!Number.isFinite(fraction) || seen === wait.seen) return;
  wait.seen = seen;
  try {
    wait.onProgress({ id, fraction, message });
  } catch {
    // The caller's callback failing must not end the wait nor the others.
  }
}

function parseJson(raw: unknown): unknown {
  if (raw === null || raw === undefined) return undefined;
  return typeof raw === "string" ? JSON.parse(raw) : raw;
}

/** The task's last error, rebuilt from its error records (name, message, stack), else from `last_error`. */
function lastError(row: OutcomeRow): Error {
  let records: unknown;
  try {
    records = parseJson(row.errors);
  } catch {
    records = null;
  }
  const last = Array.isArray(records) ? (records[records.length - 1] as { name?: unknown; message?: unknown; stack?: unknown } | undefined) : undefined;
  const message = typeof last?.message === "string" ? last.message : typeof row.last_error === "string" ? row.last_error : "failed";
  // A lost worker is ormq's own error: rebuilt as its class. Any other keeps its name only.
  const err = last?.name === WorkerLostError.name ? new WorkerLostError(message) : new Error(message);
  if (typeof last?.name === "string") err.name = last.name;
  if (typeof last?.stack === "string") err.stack = last.stack;
  return err;
}
