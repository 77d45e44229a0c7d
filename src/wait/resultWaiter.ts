/**
 * Waiting for tasks to finish from the code that enqueued them (`waitForResult`). One waiter per
 * DataSource polls the tasks waited for with one query per POLL_MS (in chunks of CHUNK ids), on
 * the DataSource's own pool: however many waits are open, they hold at most one connection at a
 * time, and with none open nothing runs. Polling rather than a notification per completion: a
 * drain nobody waits on pays nothing, and it works the same on SQLite, on PostgreSQL, and behind
 * a transaction pooler (where LISTEN does not).
 */
import type { DataSource } from "typeorm";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { resolveDataSource } from "../dataSource";
import type { TaskProgress, WaitOptions, WaitResult } from "../../entities/operations";
import { readOutcomes, type OutcomeRow } from "../dialect/taskReads";
import { InvalidOptionError, OrmqError, toError, TaskCancelledError, TaskFailedError, WaitTimeoutError } from "../errors";
import { MAX_TIMER_MS } from "../storable";

/** How often the tasks waited for are read: an outcome is seen within this of its commit. */
export const POLL_MS = 500;

/** Ids per query. */
const CHUNK = 500;

interface Wait {
  resolve: (result: WaitResult) => void;
  reject: (err: Error) => void;
  onProgress?: (progress: TaskProgress) => void;
  /** The progress last delivered, as `fraction|message`. */
  seen?: string;
}

export class ResultWaiter {
  private static readonly cache = new WeakMap<DataSource, ResultWaiter>();
  private readonly waits = new Map<string, Set<Wait>>();
  private looping = false;
  private wakeUp: (() => void) | undefined;
  private lastPoll = 0;

  private constructor(private readonly dataSource: DataSource) {}

  static for(dataSource: DataSource): ResultWaiter {
    let waiter = ResultWaiter.cache.get(dataSource);
    if (!waiter) ResultWaiter.cache.set(dataSource, (waiter = new ResultWaiter(dataSource)));
    return waiter;
  }

  /** Waits for task `id`. */
  wait(id: string, options: WaitOptions): Promise<WaitResult> {
    const { timeoutMs, signal, onProgress } = options;
    if (timeoutMs !== undefined && !(Number.isSafeInteger(timeoutMs) && timeoutMs >= 0 && timeoutMs <= MAX_TIMER_MS)) {
      throw new InvalidOptionError(`waitForResult: timeoutMs must be an integer from 0 to ${MAX_TIMER_MS}, got ${JSON.stringify(timeoutMs)}`);
    }
    if (onProgress !== undefined && typeof onProgress !== "function") throw new InvalidOptionError("waitForResult: onProgress must be a function");
    if (signal?.aborted) return Promise.reject(toError(signal.reason));
    return new Promise<WaitResult>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => finish(() => reject(toError(signal!.reason)));
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.remove(id, wait);
        settle();
      };
      const wait: Wait = {
        resolve: (result) => finish(() => resolve(result)),
        reject: (err) => finish(() => reject(toError(err))),
        onProgress,
      };
      if (timeoutMs !== undefined) timer = setTimeout(() => wait.reject(new WaitTimeoutError(id, timeoutMs)), timeoutMs);
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
      await new Promise<void>((resolve) => {
        this.wakeUp = resolve;
        setTimeout(resolve, POLL_MS).unref();
      });
      this.wakeUp = undefined;
    }
    this.looping = false;
    if (this.waits.size > 0) this.kick(); // a wait made as the loop ended
  }

  private async poll(): Promise<void> {
    const ids = [...this.waits.keys()];
    for (let i = 0; i < ids.length; i += CHUNK) {
      const chunk = ids.slice(i, i + CHUNK);
      let rows: OutcomeRow[];
      try {
        rows = await readOutcomes(this.dataSource, chunk);
      } catch {
        // The database is unreachable for now: the waits go on (their timeouts still run).
        return;
      }
      const byId = new Map(rows.map((r) => [r.id, r]));
      for (const id of chunk) {
        const waits = this.waits.get(id);
        if (!waits) continue;
        for (const wait of [...waits]) settle(id, byId.get(id), wait);
      }
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
  const err = new Error(typeof last?.message === "string" ? last.message : typeof row.last_error === "string" ? row.last_error : "failed");
  if (typeof last?.name === "string") err.name = last.name;
  if (typeof last?.stack === "string") err.stack = last.stack;
  return err;
}

/** Options of `waitForResult(id, …)` and `waitForResults`. */
export interface WaitForResultOptions extends WaitOptions {
  /** Default: the DataSource BaseTaskEntity is bound to. */
  dataSource?: DataSource;
}

/**
 * Waits for task `id` to finish: resolves with `{ id, result, deleted }` when it succeeds; rejects
 * with `TaskFailedError` (its last error as `cause`) when it fails for good, `TaskCancelledError`
 * when it is cancelled, `WaitTimeoutError` after `timeoutMs`, or the signal's reason. A task that
 * already finished resolves at once; a missing row resolves as deleted (see WaitResult).
 */
export function waitForResult<R = unknown>(id: string | number, options: WaitForResultOptions = {}): Promise<WaitResult<R>> {
  const text = String(id);
  if (!/^\d{1,19}$/.test(text)) return Promise.reject(new InvalidOptionError(`waitForResult: expected a task id, got ${JSON.stringify(id)}`));
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  try {
    return ResultWaiter.for(dataSource).wait(text, options) as Promise<WaitResult<R>>;
  } catch (err) {
    return Promise.reject(toError(err));
  }
}

/** Waits for each of `ids` (the ids enqueueMany returned): their results in order, or the first rejection. */
export function waitForResults<R = unknown>(ids: readonly (string | number)[], options: WaitForResultOptions = {}): Promise<WaitResult<R>[]> {
  return Promise.all(ids.map((id) => waitForResult<R>(id, options)));
}
