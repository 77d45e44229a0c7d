import type { DataSource } from "typeorm";
import type { DependencyContainer } from "tsyringe";
import type { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { outsideTransactions, type Completion, type FinalStatus } from "../dialect";
import { TaskCancelledError, TaskTimeoutError } from "../errors";
import type { Logger } from "../logger";
import type { TaskType } from "../registry";
import type { ClientEvents } from "../client/events";
import { AttemptAbort, type AbortListener } from "./abort";
import type { Completer, Waiting } from "./completer";
import {
  attemptCommitOf,
  commitChildren,
  createTaskContext,
  flushProgress,
  scheduledForOf,
  type AttemptWrites,
  type ContextFields,
  type DependencyCounts,
  type ProgressOwner,
  type ProgressReporter,
  type TaskContext,
  type TaskInstance,
} from "./context";
import { endedOf, lastResort, SETTLE_AFTER_ABORT_MS, startRun, successOf, type AttemptResult } from "./executor";
import { attemptOf, type Attempt } from "./outcome";
import type { RunningTask } from "./running";

/** How an attempt ended, as the summary and the events name it. */
export type OutcomeName = "succeeded" | "failed" | "retried" | "snoozed" | "cancelled";

/** Each outcome's own event, named once rather than built per finished task. */
const OUTCOME_EVENTS = {
  succeeded: "task:succeeded",
  failed: "task:failed",
  retried: "task:retried",
  snoozed: "task:snoozed",
  cancelled: "task:cancelled",
} as const;

/** Runs run() where the attempt runs it: through the run middleware, a thread or a task process. */
export type RunTask = (task: BaseTaskEntity, ctx: TaskContext) => unknown;

/** What a started attempt needs of the worker holding it (HeldTasks makes one per worker). */
export interface AttemptHost {
  readonly logger: Logger;
  readonly workerId: string;
  readonly dataSource: DataSource;
  readonly hookTimeoutMs: number;
  readonly container: DependencyContainer | undefined;
  readonly resolver: ((token: unknown) => unknown) | undefined;
  readonly events: ClientEvents;
  readonly completer: Completer;
  /** Finished attempts are logged at debug: skipped when it is off. */
  debugEnabled(): boolean;
  /** run() is over and the outcome is being written: its slot is free (once per attempt). */
  freeSlot(attempt: StartedAttempt): void;
  /** The attempt is over, its outcome written or dropped: no longer held. */
  ended(attempt: StartedAttempt, requeued: boolean): void;
  /** Counts a finished attempt in the summary (outcome null: counted as processed only). */
  count(outcome: OutcomeName | null): void;
  /** How long run() held its slot (it sizes the claim-ahead buffer). */
  ranFor(ms: number): void;
  /** A task ended (succeeded, failed, cancelled): its dependents are settled. */
  finished(taskId: string, status: "succeeded" | "failed" | "cancelled"): void;
  /** A run that ignored its abort, or a hook that hung, still runs (see AbandonedRuns). */
  abandonedRun(run: Promise<unknown>, logger: Logger): void;
  /** The worker's makers for what an attempt creates on first use (see ContextFields). */
  readonly progress: (owner: ProgressOwner) => ProgressReporter;
  readonly commit: (task: TaskInstance) => AttemptWrites;
  readonly dependencies: (taskId: string) => Promise<TaskInstance[]>;
  readonly dependencyCounts: (taskId: string) => Promise<DependencyCounts>;
}

/**
 * One attempt a worker has started, from run() to its outcome on disk:
 *
 *     begin: the timeout, run() → run() settles (and the children it gave commit), or a timeout or
 *     a cancel ends it first → one outcome (executor.ts) → the last progress written → the slot
 *     freed → the outcome written by the completer → the summary and the events → no longer held.
 *
 * One object per attempt whose steps are its methods, and which is also the context's fields,
 * its abort's listener and its completer entry. A worker starts tens of thousands of attempts a
 * second; written as an async function with a closure per step, each attempt allocated about
 * 4.5 KB in closures, contexts and promises (a new process's drain of 20,000: half of what it
 * allocated, and the collector's helper threads spent 10–16 µs of CPU a task against 5–7 for a
 * queue that allocates less: CPU the database's server, on the same cores, did not get).
 */
export class StartedAttempt implements RunningTask, ContextFields, Waiting, AbortListener {
  readonly attempt: Attempt;
  readonly abort = new AttemptAbort();
  finished = false;
  runOver = false;
  abandoned = false;
  slotFreed = false;
  readonly ctx: TaskContext;
  readonly scheduledFor: Date | null;
  /**
   * The outcome's write, once run() is over (the completer reads it: this is its entry). Set
   * before the completer sees it; given a value here so that every attempt has one shape in V8.
   */
  completion: Completion = undefined as unknown as Completion;
  private kind: AttemptResult["kind"] = "succeeded";
  private startedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  /** run() itself: it may go on after a timeout or a cancel has ended the attempt. */
  private running: Promise<unknown> | undefined;
  /** run() (and the commit of the children it gave) settled. */
  private runSettled = false;
  /** The attempt's end is decided: run() settled, or a timeout or a cancel came first. */
  private decided = false;
  /** The completer answered (resolve is called once; a second call is ignored). */
  private answered = false;
  /** The outcome put the task back in the queue (a retry, a snooze, a hand-back): it may be ready. */
  private requeued = false;
  /** No longer held (see end). */
  private over = false;
  private whenDone: Promise<void> | undefined;
  private resolveDone: (() => void) | undefined;
  private taskLogger: Logger | undefined;

  constructor(
    private readonly host: AttemptHost,
    readonly task: BaseTaskEntity,
    private readonly type: TaskType,
    /** Undefined: run() is called directly (no middleware, on the event loop). */
    readonly runTask: RunTask | undefined,
    /** A thread or process run that ignores its abort is ended by its pool: it waits that long. */
    private readonly settleAfterAbortMs = SETTLE_AFTER_ABORT_MS,
  ) {
    this.attempt = attemptOf(task);
    this.scheduledFor = scheduledForOf(task);
    this.ctx = createTaskContext(this);
  }

  // ContextFields: the context reads these when the task asks (see context.ts).
  get attemptNumber(): number {
    return this.task.attempts;
  }
  get taskId(): string {
    return this.task.id;
  }
  get signal(): AbortSignal {
    return this.abort.signal;
  }
  /** The attempt's logger, made on first use: most attempts log nothing. */
  get logger(): Logger {
    const { task } = this;
    this.taskLogger ??= this.host.logger.child({ taskId: task.id, type: this.type.key, queue: task.queue, attempt: task.attempts });
    return this.taskLogger;
  }
  get dataSource(): DataSource {
    return this.host.dataSource;
  }
  get workerId(): string {
    return this.host.workerId;
  }
  get container(): DependencyContainer | undefined {
    return this.host.container;
  }
  get resolver(): ((token: unknown) => unknown) | undefined {
    return this.host.resolver;
  }
  get progress(): (owner: ProgressOwner) => ProgressReporter {
    return this.host.progress;
  }
  get commit(): (task: TaskInstance) => AttemptWrites {
    return this.host.commit;
  }
  get dependencies(): (taskId: string) => Promise<TaskInstance[]> {
    return this.host.dependencies;
  }
  get dependencyCounts(): (taskId: string) => Promise<DependencyCounts> {
    return this.host.dependencyCounts;
  }

  /** Settles when the attempt is over (made only when asked: at shutdown, for a few attempts). */
  get done(): Promise<void> {
    if (this.over) return Promise.resolve();
    this.whenDone ??= new Promise<void>((resolve) => (this.resolveDone = resolve));
    return this.whenDone;
  }

  /** Starts the timeout and run(). */
  begin(): void {
    this.startedAt = performance.now();
    const cls = this.task.constructor as typeof BaseTaskEntity;
    const timeoutMs = this.task.timeoutMs ?? cls.timeoutMs ?? null;
    if (timeoutMs) this.timer = setTimeout(timedOut, timeoutMs, this, timeoutMs);
    // A task never inherits a transaction owner's context from whoever started the worker.
    const running = outsideTransactions(launch, this);
    this.running = running;
    running.then(
      (value) => this.returned(value),
      (thrown) => this.threw(thrown),
    );
    this.abort.listen(this);
  }

  /** The abort's listener: a timeout or a cancel ends the attempt at once, run() or not. */
  aborted(reason: unknown): void {
    if (this.decided || !(reason instanceof TaskTimeoutError || reason instanceof TaskCancelledError)) return;
    this.decide(reason);
  }

  /** run() returned: its children (ctx.enqueue) commit with the success, a failure there is run()'s. */
  private returned(value: unknown): void {
    let committing: Promise<unknown> | undefined;
    try {
      // Not once a timeout or a cancel has ended the attempt: its outcome is that.
      committing = this.decided ? undefined : commitChildren(this.ctx, value);
    } catch (err) {
      // Nothing here may throw into run()'s `then`: its rejection would be unhandled.
      return this.threw(err);
    }
    if (!committing) {
      this.runSettled = true;
      if (!this.decided) this.succeed(value);
      return;
    }
    committing.then(
      () => {
        this.runSettled = true;
        if (!this.decided) this.succeed(value);
      },
      (err: unknown) => this.threw(err),
    );
  }

  private threw(thrown: unknown): void {
    this.runSettled = true;
    if (!this.decided) this.decide(thrown);
  }

  /** The plain success: nearly every attempt, with no promise of its own. */
  private succeed(value: unknown): void {
    this.decided = true;
    let result: AttemptResult | Promise<AttemptResult>;
    try {
      this.stopTimer();
      this.runOver = true;
      result = successOf(this.task, this.attempt, value, this.ctx, this.host.hookTimeoutMs);
    } catch (internal) {
      // Building the outcome failed: the attempt still ends with one (see lastResort).
      result = lastResort(this.task, internal, this.ctx);
    }
    if (result instanceof Promise) void result.then((r) => this.outcome(r));
    else this.outcome(result);
  }

  /** Ended by a throw, a timeout or a cancel (the shutdown abort waits for run() to settle). */
  private decide(thrown: unknown): void {
    this.decided = true;
    let result: Promise<AttemptResult> | AttemptResult;
    try {
      this.stopTimer();
      const run = { running: this.running!, settled: () => this.runSettled, onRunOver: () => (this.runOver = true) };
      result = endedOf(this.task, thrown, this.ctx, this.abort, run, this.host.hookTimeoutMs, this.settleAfterAbortMs);
    } catch (internal) {
      result = lastResort(this.task, internal, this.ctx);
    }
    if (result instanceof Promise) void result.then((r) => this.outcome(r));
    else this.outcome(result);
  }

  /** The attempt is over: the timer must not abort the signal the hooks may still use. */
  private stopTimer(): void {
    clearTimeout(this.timer);
    this.abort.listen(undefined);
  }

  /** The outcome is known: the last progress report is written, then the outcome. */
  private outcome(result: AttemptResult): void {
    try {
      if (result.abandonedRun) this.host.abandonedRun(result.abandonedRun, this.logger);
      this.kind = result.kind;
      this.completion = result.completion;
      // The last progress reported is written before the outcome, while the attempt still holds the task.
      const flushing = flushProgress(this.ctx);
      if (flushing) {
        flushing.then(
          () => this.write(),
          (err: unknown) => this.internalError(err),
        );
      } else this.write();
    } catch (err) {
      this.internalError(err);
    }
  }

  private write(): void {
    try {
      if (this.abandoned) return this.end();
      this.host.ranFor(performance.now() - this.startedAt);
      this.finished = true;
      this.host.freeSlot(this); // the outcome is written in a group meanwhile; the task stays held
      // ctx.transaction (or run()'s children) committed the success already: nothing to write.
      const commit = attemptCommitOf(this.ctx);
      if (!commit?.committed) return this.host.completer.enqueue(this);
      if (this.kind === "succeeded" && this.completion.result !== null && this.completion.result !== JSON.stringify(commit.result ?? null)) {
        this.logger.warn({}, "run() returned a value after ctx.transaction committed; the task's result is what the transaction returned");
      }
      this.resolve("succeeded");
    } catch (err) {
      this.internalError(err);
    }
  }

  /** The completer's answer: the task's status once written, or null when it was not. Never throws. */
  resolve(status: FinalStatus | null): void {
    if (this.answered) return;
    this.answered = true;
    try {
      this.written(status);
    } catch (err) {
      this.internalError(err);
      return;
    }
    this.end();
  }

  private written(status: FinalStatus | null): void {
    const { host, task, kind } = this;
    this.requeued = status === "pending";
    const durationMs = Math.round(performance.now() - this.startedAt);
    if (status === null) {
      this.logger.warn({ durationMs, outcome: kind }, "the task's lease was lost before its outcome was written; outcome dropped");
      return;
    }
    if (status !== "pending") host.finished(task.id, status);
    if (host.debugEnabled()) this.logger.debug({ durationMs, outcome: kind, status }, "task attempt finished");
    if (kind === "handedBack" && status === "pending") return;
    // A cancel request made while it ran wins over a retry, a snooze or a hand-back; a success
    // the database refused to store was written as a failure (see Completer).
    const outcome = status === "cancelled" ? "cancelled" : kind === "handedBack" ? null : kind === "succeeded" && status === "failed" ? "failed" : kind;
    host.count(outcome);
    if (outcome === null) return;
    const { events } = host;
    const outcomeEvent = OUTCOME_EVENTS[outcome];
    if (events.listening("task:finished") || events.listening(outcomeEvent)) {
      const event = { taskId: task.id, type: this.type.key, queue: task.queue, workerId: host.workerId, attempt: task.attempts, outcome, durationMs };
      events.emit("task:finished", event);
      events.emit(outcomeEvent, event);
    }
  }

  private internalError(err: unknown): void {
    try {
      this.logger.error({ err }, "internal error while finishing a task");
    } finally {
      this.end();
    }
  }

  /** No longer held: the slot (if run() never freed it) and the attempt let go, once. */
  private end(): void {
    if (this.over) return;
    this.over = true;
    this.host.freeSlot(this);
    this.host.ended(this, this.requeued);
    this.resolveDone?.();
  }
}

/** run() outside any transaction owner's context (see begin): a function, not a closure per attempt. */
function launch(attempt: StartedAttempt): Promise<unknown> {
  return startRun(attempt.task, attempt.ctx, attempt.runTask);
}

function timedOut(attempt: StartedAttempt, timeoutMs: number): void {
  attempt.abort.abort(new TaskTimeoutError(timeoutMs));
}
