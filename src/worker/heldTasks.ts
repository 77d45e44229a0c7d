import type { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import type { Renewal, TaskRow } from "../dialect";
import { TaskCancelledError, toError, type WorkerNeedsRestartError } from "../errors";
import { isLevelEnabled, type Logger } from "../logger";
import type { TaskType } from "../registry";
import type { ClientEvents } from "../client/events";
import type { MiddlewareStack } from "../client/middleware";
import { AttemptAbort } from "./abort";
import { AbandonedRuns } from "./abandonedRuns";
import type { Completer } from "./completer";
import { AttemptCommit } from "./attemptCommit";
import { attemptCommitOf, type ProgressOwner, type TaskContext, type TaskInstance } from "./context";
import { AttemptProgress } from "./progress";
import { writeProgress } from "../dialect/taskWrites";
import { dependenciesOf, dependencyCounts } from "../dialect/dependencyStatements";
import type { WakeKind } from "./doze";
import { fullClaimedRow, hydrateClaimed, type ClaimedBy } from "./hydrate";
import type { ResolvedOptions } from "./options";
import { failedForGood, handedBack } from "./outcome";
import { outcomeWritten, type RunningTask } from "./running";
import { ProcessPool } from "./taskProcesses/pool";
import { REMOTE_SETTLE_AFTER_ABORT_MS } from "./remote/messages";
import { StartedAttempt, type AttemptHost } from "./startedAttempt";
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
  /**
   * A run that stops when nothing is ready (processN, `--until-empty`) while something is paused
   * or limited: the ready tasks of its types and queues it left behind (those a pause or a limit
   * held back, and any that fell due after its last claim). 0 when nothing was paused or
   * limited, and for a worker that ran until stopped.
   */
  heldBack: number;
}

/**
 * When a buffered task's lease was last known to be this worker's (this process's clock, at the
 * start of the claim or heartbeat that said so), kept on the claimed row itself. Past that plus the
 * lease, the task may have been rescued and claimed elsewhere: it does not start until a heartbeat
 * says it is still ours.
 */
const CONFIRMED_AT = Symbol("confirmedAt");

type Confirmed = TaskRow & { [CONFIRMED_AT]?: number };

/** What the tasks a worker holds work with. */
export interface HeldTasksDeps {
  options: ResolvedOptions;
  logger: Logger;
  workerId: string;
  typeByKey: Map<string, TaskType>;
  completer: Completer;
  /** The DataSource client's events (claimed, started, the outcomes). */
  events: ClientEvents;
  /** The DataSource client's run middleware, around each run(). */
  middleware: MiddlewareStack;
  /** The client's prepare(): a field read once the DataSource is ready. */
  prepareDataSource: () => void;
  /** A slot freed or a task ended ("room"), or a task went back to the queue ("work"): see Doze. */
  wake: (kind: WakeKind) => void;
  /** The worker is stopping: buffered tasks no longer start. */
  stopRequested: () => boolean;
  /** Too many abandoned runs (see AbandonedRuns): the worker must stop. */
  onAbandonLimit: (err: WorkerNeedsRestartError) => void;
  /** Told how long each run held its slot (it sizes the claim-ahead buffer). */
  onRunTime?: (ms: number) => void;
  /** Told of each task that ended (succeeded, failed, cancelled): its dependents are settled. */
  onFinished?: (taskId: string, status: "succeeded" | "failed" | "cancelled") => void;
}

/**
 * The tasks a worker holds: claimed and buffered (prefetch, waiting for a slot), and started
 * (running, or run() over and the outcome being written). It starts buffered tasks in free slots
 * in claim order, runs each attempt through the executor, hands its outcome to the completer,
 * keeps the summary, and hands back buffered tasks that never start. The claim loop fills it.
 */
export class HeldTasks {
  /**
   * Attempts held and started. Attempts, not tasks by id: a retried task's next attempt can start
   * (its claim, on another connection, sees the outcome's commit) before this process has handled
   * that outcome's reply, and both stay held, heartbeated and awaited at shutdown until each is done.
   */
  readonly running = new Set<RunningTask>();
  /** Slots in use: started tasks whose run() has not returned. */
  busySlots = 0;
  /** Claimed tasks waiting for a slot, in claim order. Held like running tasks. */
  readonly buffered = new Map<string, TaskRow>();
  /** Starting was held back for an unconfirmed lease (logged once per episode). */
  private fenced = false;
  /** Tasks claimed so far, less those handed back unstarted (processN's limit counts them). */
  claimed = 0;
  readonly summary: ProcessSummary = { processed: 0, succeeded: 0, failed: 0, retried: 0, snoozed: 0, cancelled: 0, heldBack: 0 };
  /** The last task started (processOne reports it). */
  lastTaskId: string | undefined;
  private readonly abandoned: AbandonedRuns;
  /** Runs `static executor = "thread"` tasks; created when the first one starts. */
  private threadPool: ThreadPool | undefined;
  /** Runs `static executor = "process"` tasks; created when the first one starts. */
  private processPool: ProcessPool | undefined;

  /** What the attempts this worker starts need of it: made once, shared by every attempt. */
  private readonly host: AttemptHost;
  private readonly claimedBy: ClaimedBy;

  constructor(private readonly deps: HeldTasksDeps) {
    this.abandoned = new AbandonedRuns(deps.options.maxAbandonedRuns, deps.logger, deps.onAbandonLimit);
    this.host = this.makeHost();
    this.claimedBy = { workerId: deps.workerId, leaseMs: deps.options.leaseMs };
  }

  /** Outcomes started but not yet written: run() over, the completer busy with them. */
  get unwritten(): number {
    return this.running.size - this.busySlots;
  }

  /** Takes claimed rows (claimed by a statement sent at `claimedAt`) and starts what free slots allow. */
  add(rows: readonly TaskRow[], claimedAt = performance.now()): void {
    this.claimed += rows.length;
    const { events } = this.deps;
    const tell = events.listening("task:claimed");
    for (const row of rows) {
      (row as Confirmed)[CONFIRMED_AT] = claimedAt;
      this.buffered.set(String(row.id), row);
      if (tell) events.emit("task:claimed", { taskId: String(row.id), type: String(row.type), queue: String(row.queue), workerId: this.deps.workerId, attempt: Number(row.attempts) });
    }
    this.fill();
  }

  /**
   * A heartbeat sent at `at` renewed these leases: buffered tasks among them are confirmed ours;
   * buffered tasks it neither renewed nor found busy are not ours any more (rescued after a lease
   * expired) and are dropped unstarted, their outcome the other holder's to write.
   */
  leasesRenewed({ renewed, busy }: Renewal, asked: readonly string[], at: number): void {
    const lost: string[] = [];
    for (const id of asked) {
      const row: Confirmed | undefined = this.buffered.get(id);
      if (!row || busy.has(id)) continue;
      if (renewed.has(id)) row[CONFIRMED_AT] = Math.max(at, row[CONFIRMED_AT] ?? at);
      else {
        this.buffered.delete(id);
        this.claimed--;
        lost.push(id);
      }
    }
    if (lost.length > 0) this.deps.logger.warn({ taskIds: lost }, "buffered tasks were rescued while this worker could not renew their leases; they will not start here");
    if (this.fenced) {
      this.fenced = false;
      this.deps.logger.info({}, "leases renewed; starting tasks again");
    }
    this.fill();
  }

  /** Starts buffered tasks in free slots, in claim order; none whose lease may have run out. */
  fill(): void {
    if (this.buffered.size === 0 || this.busySlots >= this.deps.options.concurrency) return;
    // Buffered tasks confirmed before this are not started (read once per fill: claim order is
    // confirmation order, give or take a heartbeat).
    const staleBefore = performance.now() - this.deps.options.leaseMs;
    while (this.busySlots < this.deps.options.concurrency && this.buffered.size > 0 && !this.deps.stopRequested()) {
      const [id, row] = this.buffered.entries().next().value as [string, TaskRow];
      // A worker that could not renew its leases for a lease period (the database unreachable, a
      // network cut) cannot know whether it still holds its tasks: it starts nothing until a
      // heartbeat gets through and says which are still its own.
      if (((row as Confirmed)[CONFIRMED_AT] ?? 0) <= staleBefore) {
        if (!this.fenced) {
          this.fenced = true;
          this.deps.logger.warn({ buffered: this.buffered.size }, "leases not renewed for a lease period: starting nothing until a heartbeat gets through");
        }
        return;
      }
      this.buffered.delete(id);
      this.start(row);
    }
  }

  /**
   * Claimed tasks that never started (stop, or a cancel request while buffered), all or these:
   * back to pending with their attempt refunded. A cancel request made meanwhile wins (the task
   * ends cancelled).
   */
  async handBack(ids?: string[]): Promise<void> {
    const rows = (ids ?? [...this.buffered.keys()]).map((id) => this.buffered.get(id)).filter((r): r is TaskRow => r !== undefined);
    if (rows.length === 0) return;
    for (const row of rows) this.buffered.delete(String(row.id));
    this.claimed -= rows.length; // never started: processN's limit counts them again
    await Promise.all(
      rows.map((row) => {
        const history = this.deps.typeByKey.get(String(row.type))?.cls.history ?? true;
        return this.deps.completer.submit(handedBack({ id: String(row.id), attempts: Number(row.attempts), history }));
      }),
    );
    this.deps.logger.debug({ count: rows.length }, "handed back buffered tasks");
  }

  /** Tasks still held: buffered, running, or finished and being written (not abandoned). For the heartbeat. */
  heldIds(): string[] {
    // Not one whose success ctx.transaction committed: there is no lease left to renew.
    const ids = new Set([...this.running].filter((r) => !r.abandoned && !(r.ctx && attemptCommitOf(r.ctx)?.committed)).map((r) => r.attempt.id));
    return [...ids, ...this.buffered.keys()];
  }

  /** Whether a task is still held and not finished (the heartbeat's check of a lost lease). */
  stillRunning(id: string): boolean {
    return this.buffered.has(id) || [...this.running].some((r) => r.attempt.id === id && !outcomeWritten(r));
  }

  /** Running tasks not yet aborted and buffered tasks: the ones a cancel request can still stop. */
  cancellable(): string[] {
    const ids = [...this.running].filter((r) => !outcomeWritten(r) && !r.abort.aborted).map((r) => r.attempt.id);
    return [...ids, ...this.buffered.keys()];
  }

  /** Someone asked to cancel these: a buffered task is handed back, a running one's signal aborts. */
  async cancelRequested(requested: string[]): Promise<void> {
    // A buffered task never starts: handed back, it ends cancelled (the request wins).
    const inBuffer = requested.filter((id) => this.buffered.has(id));
    if (inBuffer.length > 0) await this.handBack(inBuffer);
    const wanted = new Set(requested);
    for (const entry of this.running) {
      if (!wanted.has(entry.attempt.id) || entry.abort.aborted) continue;
      this.deps.logger.info({ taskId: entry.attempt.id }, "cancel requested: aborting the running task");
      entry.abort.abort(new TaskCancelledError());
    }
  }

  /** Closes the thread pool, if one was started. */
  async close(): Promise<void> {
    await Promise.all([this.threadPool?.close(), this.processPool?.close()]);
  }

  private start(row: TaskRow): void {
    const { typeByKey, options } = this.deps;
    this.deps.prepareDataSource(); // in case it was busy in a transaction when the worker started
    let task: BaseTaskEntity;
    let type: TaskType | undefined;
    try {
      type = typeByKey.get(String(row.type));
      // The claim filters by type, so this is a bug, but it must not strand the row.
      if (!type) throw new Error(`claimed a task of type ${String(row.type)} that this worker does not run`);
      task = hydrateClaimed(type.metadata, options.dataSource.driver, row, this.claimedBy);
    } catch (err) {
      // A row that cannot be loaded (bad JSON, a transformer that throws) fails for good, alone;
      // the rest of the batch runs.
      this.failUnloadable(row, toError(err));
      return;
    }
    this.lastTaskId = task.id;
    const { executor } = type.cls;
    const remote = executor === "thread" || executor === "process";
    const { events, middleware } = this.deps;
    const executorRun = remote ? (t: BaseTaskEntity, c: TaskContext) => (executor === "thread" ? this.threads() : this.processes()).run(t, fullClaimedRow(row, t), c) : undefined;
    // Without run middleware (nearly always), run() is called directly: no chain per attempt.
    const runTask = middleware.hasRun
      ? (t: BaseTaskEntity, c: TaskContext) => middleware.run(t, c, () => (executorRun ? executorRun(t, c) : t.run(c)))
      : executorRun;
    // A thread or process run that ignores its abort is ended by its pool: not abandoned.
    const attempt = new StartedAttempt(this.host, task, type, runTask, remote ? REMOTE_SETTLE_AFTER_ABORT_MS : undefined);
    if (events.listening("task:started")) events.emit("task:started", { taskId: task.id, type: type.key, queue: task.queue, workerId: this.deps.workerId, attempt: task.attempts });
    // Held before the attempt begins: it may end before begin() returns.
    this.busySlots++;
    this.running.add(attempt);
    attempt.begin();
  }

  /** What the attempts this worker starts need of it: made once, shared by every attempt. */
  private makeHost(): AttemptHost {
    return {
      logger: this.deps.logger,
      workerId: this.deps.workerId,
      dataSource: this.deps.options.dataSource,
      hookTimeoutMs: this.deps.options.hookTimeoutMs,
      container: this.deps.options.container,
      resolver: this.deps.options.resolver,
      events: this.deps.events,
      completer: this.deps.completer,
      debugEnabled: () => isLevelEnabled(this.deps.logger, "debug"),
      freeSlot: (attempt) => this.freeSlot(attempt),
      ended: (attempt, requeued) => {
        this.running.delete(attempt);
        this.deps.wake(requeued ? "work" : "room");
      },
      count: (outcome) => {
        this.summary.processed++;
        if (outcome !== null) this.summary[outcome]++;
      },
      ranFor: (ms) => this.deps.onRunTime?.(ms),
      finished: (taskId, status) => this.deps.onFinished?.(taskId, status),
      abandonedRun: (run, logger) => this.abandoned.track(run, logger),
      progress: (owner) => this.progressReporter(owner),
      commit: (task) => this.attemptCommit(task),
      dependencies: (taskId) => this.readDependencies(taskId),
      dependencyCounts: (taskId) => this.countDependencies(taskId),
    };
  }

  /** A task's dependencies, for ctx.dependencies(), and their counts, for ctx.dependencyCounts(). */
  private readonly readDependencies = (taskId: string) => dependenciesOf(this.deps.options.dataSource.manager, taskId);
  private readonly countDependencies = (taskId: string) => dependencyCounts(this.deps.options.dataSource.manager, taskId);

  /** An attempt's transactional commit, made when run() first uses ctx.transaction or ctx.enqueue. */
  private readonly attemptCommit = (task: TaskInstance) => new AttemptCommit(this.deps.options.dataSource, task as BaseTaskEntity, this.deps.workerId, this.deps.options.leaseMs);

  /** An attempt's progress reporter, made when it first reports: its writes are guarded by the attempt. */
  private readonly progressReporter = (owner: ProgressOwner) =>
    new AttemptProgress(
      (report) => writeProgress(this.deps.options.dataSource.manager, owner, report),
      (err) => owner.logger.warn({ err }, "could not record the task's progress"),
    );

  private processes(): ProcessPool {
    const { taskProcesses: size, bootstrap, taskProcessMaxTasks: maxTasks, taskProcessRecycleMb: recycleMb } = this.deps.options;
    this.processPool ??= new ProcessPool({ size, bootstrap: bootstrap!, maxTasks, recycleMb, logger: this.deps.logger });
    return this.processPool;
  }

  private threads(): ThreadPool {
    this.threadPool ??= new ThreadPool({ size: this.deps.options.threads, bootstrap: this.deps.options.bootstrap! });
    return this.threadPool;
  }

  private freeSlot(entry: RunningTask): void {
    if (entry.slotFreed) return;
    entry.slotFreed = true;
    this.busySlots--;
    this.fill();
    this.deps.wake("room");
  }

  private failUnloadable(row: TaskRow, err: Error): void {
    const id = String(row.id);
    this.deps.logger.error({ err, taskId: id, type: row.type }, "could not load a claimed task; it fails without running");
    // A task that could not be loaded has no class to ask: its failure is recorded.
    const attempt = { id, attempts: Number(row.attempts), history: true };
    const done = this.deps.completer
      .submit(failedForGood(attempt, err))
      .then((status) => {
        if (status !== null && status !== "pending") this.deps.onFinished?.(id, status);
      })
      .finally(() => {
        this.running.delete(entry);
        this.deps.wake("room");
      });
    const entry: RunningTask = { attempt, abort: new AttemptAbort(), done, finished: true, runOver: true, abandoned: false, slotFreed: true };
    this.running.add(entry);
  }
}
