import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { createDialect, outsideTransactions, prepareDataSource, type Dialect, type TaskFilter, type TaskRow } from "../dialect";
import { OrmqConfigurationError, TaskCancelledError, toError } from "../errors";
import { isLevelEnabled, type Logger } from "../logger";
import { TaskRegistry, type TaskClass, type TaskType } from "../registry";
import { TaskSubscriber } from "../enqueue/subscriber";
import { concerns, onCommitted } from "../enqueue/announcements";
import { startHeartbeat } from "../maintenance/heartbeat";
import type { Periodic } from "../maintenance/periodic";
import { startPruner } from "../maintenance/pruner";
import { startRescuer } from "../maintenance/rescuer";
import { AttemptAbort } from "./abort";
import { AbandonedRuns } from "./abandonedRuns";
import { startCancelWatcher } from "./cancelWatcher";
import { selectTypes } from "./typeSelection";
import { Completer } from "./completer";
import { Doze } from "./doze";
import { createTaskContext } from "./context";
import { executeAttempt } from "./executor";
import { hydrate } from "./hydrate";
import type { ResolvedOptions } from "./options";
import { attemptOf, failedForGood, handedBack } from "./outcome";
import { finishRunning, type RunningTask } from "./running";
import { ThreadPool } from "./threads/pool";

/** What a worker did: attempts finished, and how they ended. */
export interface ProcessSummary {
  /** Attempts that finished (succeeded, failed or will retry). */
  processed: number;
  succeeded: number;
  /** Tasks that gave up for good. */
  failed: number;
  /** Attempts that failed and will run again. */
  retried: number;
  /** Attempts that asked to come back later (SnoozeTask). */
  snoozed: number;
  /** Tasks that ended cancelled (CancelTask, or cancelled while running). */
  cancelled: number;
}

/** Workers of this process whose run() has not returned (tests check that none is left behind). */
let running = 0;

/** How many workers of this process are running. */
export function liveWorkers(): number {
  return running;
}

/** A worker that cannot claim (database down) backs off up to this long between tries. */
const MAX_CLAIM_BACKOFF_MS = 5_000;
/**
 * Outcomes waiting to be written beyond this many stop further claims: slots free when run()
 * returns, so without a bound a slow database would let finished-but-unwritten tasks pile up.
 */
const MAX_UNWRITTEN = 1_000;


/**
 * The claim loop: claims ready tasks while it has free slots (and, with `prefetch`, a few more
 * into a local buffer), runs each on the event loop, and hands each outcome to the completer. A
 * slot frees as soon as run() returns: the completer writes outcomes in groups meanwhile, and the
 * task stays held (heartbeats renew its lease) until its outcome is written. It sleeps when
 * nothing is ready, until a wake-up (a new task announced, a slot freed) or the poll interval.
 */
export class Worker {
  readonly id = `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
  /**
   * Attempts held and started: running, or run() over and the outcome being written. Attempts,
   * not tasks by id: a retried task's next attempt can start (its claim, on another connection,
   * sees the outcome's commit) before this process has handled that outcome's reply, and both
   * stay held, heartbeated and awaited at shutdown until each is done.
   */
  private readonly running = new Set<RunningTask>();
  /** Slots in use: started tasks whose run() has not returned. */
  private busySlots = 0;
  /** Claimed tasks waiting for a slot (prefetch), in claim order. Held like running tasks. */
  private readonly buffered = new Map<string, TaskRow>();
  private readonly summary: ProcessSummary = { processed: 0, succeeded: 0, failed: 0, retried: 0, snoozed: 0, cancelled: 0 };
  /** Runs (and hooks) that ignored their abort or deadline and still run: see AbandonedRuns. */
  private readonly abandoned: AbandonedRuns;
  private failure: unknown;
  private readonly logger: Logger;
  private claimedTotal = 0;
  private stopRequested = false;
  private stopNow: (() => void) | undefined;
  private readonly stopped = new Promise<void>((resolve) => (this.stopNow = resolve));
  /** The claim loop sleeps on this; wake() cuts a sleep short, or the next one if none is on. */
  private readonly doze = new Doze();
  /** The last task this worker claimed (processOne reports it). */
  lastTaskId: string | undefined;
  /** Runs `static executor = "thread"` tasks; created when the first one starts. */
  private threadPool: ThreadPool | undefined;

  constructor(
    private readonly taskClass: TaskClass,
    private readonly options: ResolvedOptions,
    /** Claim at most this many tasks in all, then finish (processN); Infinity runs until stopped. */
    private readonly limit: number,
  ) {
    this.logger = options.logger.child({ workerId: this.id });
    this.abandoned = new AbandonedRuns(options.maxAbandonedRuns, this.logger, (err) => {
      this.failure ??= err;
      this.stop();
    });
  }

  /** Finished attempts are logged at debug: skipped (with their per-task logger) when it is off. */
  private get debugEnabled(): boolean {
    return isLevelEnabled(this.logger, "debug");
  }

  private endGrace: (() => void) | undefined;
  private readonly graceEnded = new Promise<void>((resolve) => (this.endGrace = resolve));

  /** Ends the grace period at once: running tasks' signals abort now. */
  skipGrace(): void {
    this.endGrace?.();
  }

  /** Asks the worker to stop: no more claims, running tasks get the grace period. */
  stop(): void {
    if (this.stopRequested) return;
    this.stopRequested = true;
    this.stopNow?.();
    this.wake();
  }

  /** Runs until the limit is reached and no task is ready, or until stopped. */
  async run(): Promise<ProcessSummary> {
    running++;
    try {
      return await this.runToEnd();
    } finally {
      running--;
    }
  }

  private async runToEnd(): Promise<ProcessSummary> {
    const { dataSource, signal } = this.options;
    const registry = TaskRegistry.for(dataSource);
    prepareDataSource(dataSource); // before the dialect connects (see prepareDataSource)
    const types = selectTypes(this.taskClass, registry.typesFor(this.taskClass), this.options);
    if (!dataSource.subscribers.some((s) => s instanceof TaskSubscriber)) {
      throw new OrmqConfigurationError("ormq's subscriber is not registered: add ...ormqSubscribers to the DataSource's `subscribers`");
    }
    const typeByKey = new Map(types.map((t) => [t.key, t]));
    const dialect = createDialect(dataSource, this.id, this.logger, { slowConnectionMs: this.options.leaseMs });
    const completer = new Completer(dialect, this.logger);
    const onAbort = () => this.stop();
    signal?.addEventListener("abort", onAbort);
    if (signal?.aborted) this.stop();
    const myTypes = new Set(typeByKey.keys());
    const onAnnounced = (announcements: readonly string[] | null) => {
      if (concerns(announcements, myTypes, this.options.queues)) this.wake();
    };
    const unsubscribe = onCommitted(dataSource, onAnnounced);
    const cancelWatcher = startCancelWatcher(dialect, this.logger, () => this.cancellable(), (ids) => this.cancelRequested(ids));
    const { heartbeatIntervalMs, rescueIntervalMs, leaseMs, queues } = this.options;
    const maintenance: Periodic[] = [];
    let registered = false;
    try {
      await dialect.registerWorker({ name: this.taskClass.name, host: hostname(), pid: process.pid, queues });
      registered = true;
      const stillRunning = (id: string) => this.buffered.has(id) || [...this.running].some((r) => r.attempt.id === id && !r.finished);
      maintenance.push(startHeartbeat(dialect, heartbeatIntervalMs, leaseMs, () => this.heldTaskIds(), stillRunning, this.logger));
      maintenance.push(startRescuer(dialect, rescueIntervalMs, this.logger));
      if (this.options.prune) maintenance.push(startPruner(dataSource, this.options.prune, this.logger));
      await dialect.listen(onAnnounced);
      this.logger.info({ types: [...typeByKey.keys()], queues: this.options.queues, concurrency: this.options.concurrency }, "worker started");
      await this.claimLoop(dialect, completer, typeByKey);
    } catch (err) {
      this.failure ??= err;
      this.stop(); // running tasks get the grace period, as on a signal
    }
    try {
      // Running tasks finish (or are handed back) and their outcomes are written before the
      // dialect's connections close, even when the loop failed.
      await finishRunning(this.running, completer, this.logger, {
        gracePeriodMs: this.options.gracePeriodMs,
        stopRequested: () => this.stopRequested,
        stopped: this.stopped,
        graceEnded: this.graceEnded,
      });
    } finally {
      // The heartbeat runs until the last running task is done: a task in its grace period keeps
      // its lease.
      await Promise.all(maintenance.map((m) => m.stop()));
      if (registered) await dialect.markStopped().catch((err) => this.logger.warn({ err }, "could not mark the worker stopped"));
      await cancelWatcher.stop();
      unsubscribe();
      signal?.removeEventListener("abort", onAbort);
      await this.threadPool?.close();
      await dialect.close();
      this.logger.info({ ...this.summary }, "worker stopped");
    }
    if (this.failure !== undefined) throw toError(this.failure);
    return { ...this.summary };
  }

  private async claimLoop(dialect: Dialect, completer: Completer, typeByKey: Map<string, TaskType>): Promise<void> {
    const { concurrency, batchSize, prefetch, queues, leaseMs, pollIntervalMs } = this.options;
    const historyTypes = [...typeByKey.values()].filter((t) => t.cls.history).map((t) => t.key);
    const request = { types: [...typeByKey.keys()], queues, leaseMs, historyTypes };
    // With a buffer, claim once it is half empty rather than a task at a time as slots free.
    const minClaim = prefetch > 0 ? Math.ceil(Math.min(batchSize, concurrency + prefetch) / 2) : 1;
    const fill = () => this.startBuffered(typeByKey, completer);
    this.loop = { typeByKey, completer };
    let claimFailures = 0;
    try {
      while (!this.stopRequested) {
        fill();
        const remaining = this.limit - this.claimedTotal;
        if (remaining <= 0 && this.buffered.size === 0) return;
        const unwritten = this.running.size - this.busySlots;
        const want = Math.min(
          concurrency + prefetch - this.busySlots - this.buffered.size,
          batchSize,
          remaining,
          MAX_UNWRITTEN - unwritten,
        );
        if (want > 0 && want >= Math.min(minClaim, remaining)) {
          this.doze.forget(); // a wake-up from here on means: look again
          let rows: TaskRow[];
          try {
            rows = await dialect.claim({ ...request, limit: want });
            claimFailures = 0;
          } catch (err) {
            claimFailures++;
            // A script (processN) should hear that the database is gone; a long-running worker waits.
            if (this.limit !== Infinity && claimFailures > 5) throw err;
            const delay = Math.min(MAX_CLAIM_BACKOFF_MS, 100 * 2 ** claimFailures);
            this.logger.warn({ err, retryInMs: delay }, "claim failed; retrying");
            await this.sleep(delay);
            continue;
          }
          this.claimedTotal += rows.length;
          for (const row of rows) this.buffered.set(String(row.id), row);
          fill();
          if (rows.length === want) continue; // a full batch: more may be ready
          // Nothing more ready and nothing held that could enqueue more: processN is done. Unless
          // a wake-up came during the claim: a task whose outcome (a retry, say) was written
          // while the claim ran is ready, but the claim could not see it. Look again first.
          if (this.limit !== Infinity && this.running.size === 0 && this.buffered.size === 0 && !this.doze.pending) return;
          // Sleep until the next scheduled task is due, if that comes before the next poll; a
          // wake-up (an enqueue, here or announced) cuts the sleep short and looks again.
          await this.sleep(Math.min(pollIntervalMs, await this.nextDue(dialect, request)));
          continue;
        }
        await this.sleep(pollIntervalMs);
      }
    } finally {
      this.loop = undefined;
      // Tasks claimed but never started go back at once, their attempt not counted.
      await this.handBackBuffered(completer, typeByKey);
    }
  }

  /** What the claim loop works with, while it runs: slots fill and buffered tasks go back through it. */
  private loop: { typeByKey: Map<string, TaskType>; completer: Completer } | undefined;

  /** Starts buffered tasks in free slots, while the claim loop runs. */
  private fillSlots(): void {
    if (this.loop) this.startBuffered(this.loop.typeByKey, this.loop.completer);
  }

  /** Hands back these buffered tasks (a cancel request), while the claim loop runs. */
  private async dropBuffered(ids: string[]): Promise<void> {
    if (this.loop) await this.handBackBuffered(this.loop.completer, this.loop.typeByKey, ids);
  }

  /** Starts buffered tasks in free slots, in claim order. */
  private startBuffered(typeByKey: Map<string, TaskType>, completer: Completer): void {
    while (this.busySlots < this.options.concurrency && this.buffered.size > 0 && !this.stopRequested) {
      const [id, row] = this.buffered.entries().next().value as [string, TaskRow];
      this.buffered.delete(id);
      this.start(row, typeByKey, completer);
    }
  }

  /**
   * Claimed tasks that never started (stop, or a cancel request while buffered): back to pending
   * with their attempt refunded. A cancel request made meanwhile wins (the task ends cancelled).
   */
  private async handBackBuffered(completer: Completer, typeByKey: Map<string, TaskType>, ids?: string[]): Promise<void> {
    const rows = (ids ?? [...this.buffered.keys()]).map((id) => this.buffered.get(id)).filter((r): r is TaskRow => r !== undefined);
    if (rows.length === 0) return;
    for (const row of rows) this.buffered.delete(String(row.id));
    this.claimedTotal -= rows.length; // never started: processN's limit counts them again
    await Promise.all(
      rows.map((row) => {
        const history = typeByKey.get(String(row.type))?.cls.history ?? true;
        return completer.submit(handedBack({ id: String(row.id), attempts: Number(row.attempts), history }));
      }),
    );
    this.logger.debug({ count: rows.length }, "handed back buffered tasks");
  }

  private async nextDue(dialect: Dialect, filter: TaskFilter): Promise<number> {
    try {
      const due = await dialect.nextDueInMs(filter);
      return due === null ? Infinity : Math.max(0, due);
    } catch (err) {
      this.logger.debug({ err }, "could not read the next due time; polling");
      return Infinity;
    }
  }

  /** Tasks this worker still holds: buffered, running, or finished and being written (not abandoned). */
  private heldTaskIds(): string[] {
    const ids = new Set([...this.running].filter((r) => !r.abandoned).map((r) => r.attempt.id));
    return [...ids, ...this.buffered.keys()];
  }

  /** Running tasks not yet aborted and buffered tasks: the ones a cancel request can still stop. */
  private cancellable(): string[] {
    const ids = [...this.running].filter((r) => !r.finished && !r.abort.aborted).map((r) => r.attempt.id);
    return [...ids, ...this.buffered.keys()];
  }

  /** Someone asked to cancel these: a buffered task is handed back, a running one's signal aborts. */
  private async cancelRequested(requested: string[]): Promise<void> {
    // A buffered task never starts: handed back, it ends cancelled (the request wins).
    const inBuffer = requested.filter((id) => this.buffered.has(id));
    if (inBuffer.length > 0) await this.dropBuffered(inBuffer);
    const wanted = new Set(requested);
    for (const entry of this.running) {
      if (!wanted.has(entry.attempt.id) || entry.abort.aborted) continue;
      this.logger.info({ taskId: entry.attempt.id }, "cancel requested: aborting the running task");
      entry.abort.abort(new TaskCancelledError());
    }
  }

  private start(row: TaskRow, typeByKey: Map<string, TaskType>, completer: Completer): void {
    const { dataSource } = this.options;
    prepareDataSource(dataSource); // in case it was busy in a transaction when the worker started
    let task: BaseTaskEntity;
    let type: TaskType | undefined;
    try {
      type = typeByKey.get(String(row.type));
      // The claim filters by type, so this is a bug, but it must not strand the row.
      if (!type) throw new Error(`claimed a task of type ${String(row.type)} that this worker does not run`);
      task = hydrate(type.metadata, dataSource.driver, row);
    } catch (err) {
      // A row that cannot be loaded (bad JSON, a transformer that throws) fails for good, alone;
      // the rest of the batch runs.
      this.failUnloadable(row, toError(err), completer);
      return;
    }
    this.lastTaskId = task.id;
    const abort = new AttemptAbort();
    // Made on first use: most attempts log nothing.
    let taskLogger: Logger | undefined;
    const logger = () => (taskLogger ??= this.logger.child({ taskId: task.id, type: type.key, queue: task.queue, attempt: task.attempts }));
    const ctx = createTaskContext({
      attempt: task.attempts,
      signal: () => abort.signal,
      logger,
      dataSource,
      workerId: this.id,
      container: this.options.container,
    });
    const cls = type.cls;
    const runTask =
      cls.executor === "thread"
        ? (t: BaseTaskEntity) => this.threads().run(t, row, ctx)
        : undefined;
    const entry: RunningTask = { attempt: attemptOf(task), abort, finished: false, runOver: false, abandoned: false, slotFreed: false, done: Promise.resolve() };
    entry.done = (async () => {
      const startedAt = performance.now();
      // A task never inherits a transaction owner's context from whoever started the worker.
      const { completion, kind, abandonedRun } = await outsideTransactions(() =>
        executeAttempt(task, ctx, abort, { onRunOver: () => (entry.runOver = true), runTask, hookTimeoutMs: this.options.hookTimeoutMs }),
      );
      if (abandonedRun) this.abandoned.track(abandonedRun, logger());
      if (entry.abandoned) return;
      entry.finished = true;
      this.freeSlot(entry); // the outcome is written in a group meanwhile; the task stays held
      const status = await completer.submit(completion);
      const durationMs = Math.round(performance.now() - startedAt);
      if (status === null) {
        logger().warn({ durationMs, outcome: kind }, "the task's lease was lost before its outcome was written; outcome dropped");
        return;
      }
      if (this.debugEnabled) logger().debug({ durationMs, outcome: kind, status }, "task attempt finished");
      if (kind === "handedBack" && status === "pending") return;
      this.summary.processed++;
      // A cancel request made while it ran wins over a retry, a snooze or a hand-back; a success
      // the database refused to store was written as a failure (see Completer).
      const outcome = status === "cancelled" ? "cancelled" : kind === "handedBack" ? null : kind === "succeeded" && status === "failed" ? "failed" : kind;
      if (outcome === null) return;
      this.summary[outcome]++;
      const event = { taskId: task.id, type: type.key, queue: task.queue, outcome, durationMs };
      this.options.metrics?.attemptFinished(event);
      this.options.onAttemptFinished?.(event);
    })()
      .catch((err) => logger().error({ err }, "internal error while finishing a task"))
      .finally(() => {
        this.freeSlot(entry);
        this.running.delete(entry);
        this.wake();
      });
    this.busySlots++;
    this.running.add(entry);
  }

  private threads(): ThreadPool {
    this.threadPool ??= new ThreadPool({ size: this.options.threads, bootstrap: this.options.bootstrap! });
    return this.threadPool;
  }

  private freeSlot(entry: RunningTask): void {
    if (entry.slotFreed) return;
    entry.slotFreed = true;
    this.busySlots--;
    this.fillSlots();
    this.wake();
  }

  private failUnloadable(row: TaskRow, err: Error, completer: Completer): void {
    const id = String(row.id);
    this.logger.error({ err, taskId: id, type: row.type }, "could not load a claimed task; it fails without running");
    // A task that could not be loaded has no class to ask: its failure is recorded.
    const attempt = { id, attempts: Number(row.attempts), history: true };
    const done = completer
      .submit(failedForGood(attempt, err))
      .then(() => undefined)
      .finally(() => {
        this.running.delete(entry);
        this.wake();
      });
    const entry: RunningTask = { attempt, abort: new AttemptAbort(), done, finished: true, runOver: true, abandoned: false, slotFreed: true };
    this.running.add(entry);
  }

  private wake(): void {
    this.doze.wake();
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopRequested) {
      this.doze.forget();
      return Promise.resolve();
    }
    return this.doze.sleep(ms);
  }
}
