import "reflect-metadata"; // tsyringe needs it loaded first, whatever imports this module
import { container as rootContainer, type DependencyContainer, type InjectionToken } from "tsyringe";
import { DataSource, EntityManager } from "typeorm";
import { AttemptCommitError } from "../errors";
import type { Logger } from "../logger";
import { checkProgress } from "./progress";

/** What `run(ctx)` and the hooks receive. */
export interface TaskContext {
  /** This attempt's number: 1 on the first run. */
  readonly attempt: number;
  /**
   * Aborts when the task must stop; `signal.reason` says why (a `WorkerShutdownError` when the
   * worker's grace period is over). Pass it to fetch() and friends.
   */
  readonly signal: AbortSignal;
  /** A logger bound to this task (`taskId`, `type`, `queue`, `attempt`). */
  readonly logger: Logger;
  /** The DataSource's EntityManager. Not a transaction: run() is not wrapped in one. */
  readonly manager: EntityManager;
  readonly dataSource: DataSource;
  /** The id of the worker running this attempt. */
  readonly workerId: string;
  /**
   * Reports progress: a fraction from 0 to 1 and an optional message (at most 200 characters).
   * Stored on the task (at most one write a second; the last one before the outcome), shown by
   * `ormq show` and `ormq list`, and given to `waitForResult({ onProgress })`. A bad value throws.
   */
  progress(fraction: number, message?: string): Promise<void>;
  /** For a task a schedule enqueued: its tick, the same on every attempt (see scheduledForOf). Null otherwise. */
  readonly scheduledFor: Date | null;
  /**
   * Runs `fn` in a transaction that also records this attempt's success, with `fn`'s value as the
   * task's result, and commits the children given to `enqueue`: the task's writes and its outcome
   * commit together or not at all (a crash, a timeout or a throw before the commit leaves none of
   * them; a lease lost meanwhile makes it throw `AttemptLostError` and roll back). Call it once,
   * last: `return ctx.transaction(async (m) => …)`. After it commits the attempt has succeeded,
   * whatever run() does next. For a plain transaction use `ctx.dataSource.transaction(fn)`.
   * Not in a thread or task process (`AttemptCommitError`): there the worker writes the outcome.
   */
  transaction<T>(fn: (manager: EntityManager) => Promise<T>): Promise<T>;
  /**
   * Enqueues child tasks (their `parentId` is this task's) that commit with this attempt's
   * success: a failed, cancelled or timed-out attempt enqueues none, and a retried one gives them
   * again from scratch. Written by `ctx.transaction`, or when run() returns. Not in a thread or
   * task process (`AttemptCommitError`).
   */
  enqueue(tasks: TaskInstance | readonly TaskInstance[]): void;
  /** This task's children (the tasks its succeeded attempt enqueued), oldest first, each of its own class. */
  children<T extends TaskInstance = TaskInstance>(): Promise<T[]>;
  /**
   * The tasks this one depends on (`dependsOn`), in id order, each of its own class with its
   * `result`: all succeeded, unless the class's `onDependencyFailure` is "run".
   */
  dependencies<T extends TaskInstance = TaskInstance>(): Promise<T[]>;
  /**
   * How many of this task's dependencies ended each way (`open`: not yet), counted from the edges
   * without loading the tasks: a batch's callback's counts (see enqueueBatch).
   */
  dependencyCounts(): Promise<DependencyCounts>;
  /**
   * Resolves a service: `EntityManager`, `DataSource`, `TaskLogger` and `TaskContextToken` are
   * this attempt's; anything else comes from the worker's `resolver` when it has one (NestJS's
   * injector under `ormq/nestjs`), else from this attempt's container: a child of the container
   * given to the worker (`{ container }`; tsyringe's root container by default).
   */
  resolve<T>(token: InjectionToken<T>): T;
  /** This attempt's child container (created on first use). */
  readonly container: DependencyContainer;
}

/** Thrown where an attempt's outcome is not this context's to write (a thread or task process). */
function remoteCommit(what: string): AttemptCommitError {
  return new AttemptCommitError(`${what}: not available in a thread or task process, where the worker writes the attempt's outcome; use ctx.dataSource.transaction for a plain transaction`);
}

/**
 * A task, as ctx.enqueue takes it and ctx.children gives it: an instance of a task class
 * (`SendEmail.create({...})`). Structural, so that this module and the entities do not import
 * each other.
 */
export interface TaskInstance {
  readonly id: string;
  run(ctx: TaskContext): unknown;
}

/** How many of a task's dependencies stand each way. */
export interface DependencyCounts {
  open: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  /** Deleted before they finished (or after, by a class that keeps no succeeded tasks: those count as succeeded when their worker settled them). */
  deleted: number;
}

/** An attempt's transactional commit, as the context uses it (implemented by attemptCommit.ts). */
export interface AttemptWrites {
  readonly committed: boolean;
  /** The success is being written or committed: a heartbeat that finds the task gone has not lost it. */
  readonly writingOrCommitted: boolean;
  readonly hasChildren: boolean;
  /** The result the committed success recorded. */
  readonly result: unknown;
  /** Settles when a commit in flight has; undefined when none is. */
  settled(): Promise<unknown> | undefined;
  enqueue(tasks: TaskInstance | readonly TaskInstance[]): void;
  transaction<T>(fn: (manager: EntityManager) => Promise<T>): Promise<T>;
}

/** The injection token of the attempt's logger (`ctx.resolve(TaskLogger)`, or `@inject(TaskLogger)`). */
export const TaskLogger: InjectionToken<Logger> = Symbol.for("ormq.TaskLogger");
/** The injection token of the attempt's TaskContext. */
export const TaskContextToken: InjectionToken<TaskContext> = Symbol.for("ormq.TaskContext");

/** A value, or a function that makes it when first asked (each attempt's signal and logger). */
export type Lazy<T> = T | (() => T);

/**
 * What a context is made from. The worker's attempt object is itself these fields (see
 * StartedAttempt): a context holds one reference, not a copy per attempt.
 */
export interface ContextFields {
  /** This attempt's number (ctx.attempt). */
  readonly attemptNumber: number;
  readonly signal: Lazy<AbortSignal>;
  readonly logger: Lazy<Logger>;
  readonly dataSource: DataSource;
  readonly workerId: string;
  readonly scheduledFor?: Date | null;
  /** The task's id (for the progress writes). */
  readonly taskId?: string;
  /**
   * Makes the attempt's progress reporter when the task first reports (see AttemptProgress): one
   * function per worker, so an attempt that reports nothing allocates nothing for it. A context
   * without it only checks the values.
   */
  readonly progress?: (attempt: ProgressOwner) => ProgressReporter;
  readonly container?: DependencyContainer;
  /** Resolves the services the attempt does not hold itself, instead of the container (see WorkerOptions.resolver). */
  readonly resolver?: (token: unknown) => unknown;
  /** The task (what the attempt's commit writes for). */
  readonly task?: TaskInstance;
  /**
   * Makes the attempt's transactional commit when run() first asks for it (see attemptCommit.ts):
   * one function per worker. Absent in a thread or task process.
   */
  readonly commit?: (task: TaskInstance) => AttemptWrites;
  /** Reads a task's dependencies (see workflow/dependencies.ts): one function per worker. */
  readonly dependencies?: (taskId: string) => Promise<TaskInstance[]>;
  /** Counts a task's dependencies by how they ended: one function per worker. */
  readonly dependencyCounts?: (taskId: string) => Promise<DependencyCounts>;
}

/** What a progress reporter knows of its attempt. */
export interface ProgressOwner {
  readonly id: string;
  readonly workerId: string;
  readonly attempt: number;
  readonly logger: Logger;
}

/** Records an attempt's progress reports; `flush` writes the last one (the attempt's end). */
export interface ProgressReporter {
  report(fraction: unknown, message?: unknown): Promise<void>;
  flush?(): Promise<void>;
}

/**
 * Writes the attempt's last progress report; undefined (nothing to await) when it made none, as
 * almost every attempt: no promise per task for it.
 */
export function flushProgress(ctx: TaskContext): Promise<void> | undefined {
  return ctx instanceof AttemptContext ? ctx.reporter?.flush?.() : undefined;
}

/** The attempt's commit, if run() used ctx.transaction or ctx.enqueue (nearly none do: undefined). */
export function attemptCommitOf(ctx: TaskContext): AttemptWrites | undefined {
  return ctx instanceof AttemptContext ? ctx.madeCommit : undefined;
}

/**
 * When run() returned having given children it did not commit in ctx.transaction: commits them
 * with its success, `value` as the result (a failure of that is run()'s). Undefined otherwise.
 */
export function commitChildren(ctx: TaskContext, value: unknown): Promise<unknown> | undefined {
  const commit = attemptCommitOf(ctx);
  return commit && commit.hasChildren && !commit.committed ? commit.transaction(async () => value) : undefined;
}

/**
 * The tick a schedule enqueued this task for, or null. tickRow writes the tick as both the task's
 * `runAt` and its `createdAt`; a retry, a snooze or a rescue only moves `runAt` later, so the
 * earlier of the two is the tick on every attempt. (A tick task written before ormq wrote the
 * tick as `createdAt` has its write time there, later than its first `runAt`: the minimum still
 * gives the tick for its first attempt.)
 */
export function scheduledForOf(task: { scheduleName: string | null; createdAt: Date | null; runAt: Date | null }): Date | null {
  if (!task.scheduleName) return null;
  // Either may be damaged in a row written by hand (null, not a date): the other one, or null.
  const times = [task.runAt, task.createdAt].filter((d): d is Date => d instanceof Date && !Number.isNaN(d.getTime()));
  if (times.length === 0) return null;
  return times.reduce((a, b) => (b.getTime() < a.getTime() ? b : a));
}

/**
 * Builds a task's context. The signal, the logger and the child container are made only if the
 * task asks for them: most tasks use none, and a worker starts thousands of attempts a second.
 */
export function createTaskContext(fields: ContextFields): TaskContext {
  return new AttemptContext(fields);
}

/** A class, not an object literal: its getters live on the prototype, not in every attempt. */
class AttemptContext implements TaskContext {
  readonly attempt: number;
  readonly dataSource: DataSource;
  readonly workerId: string;
  readonly scheduledFor: Date | null;
  private madeLogger: Logger | undefined;
  private child: DependencyContainer | undefined;
  /** Made on the first progress report. */
  reporter: ProgressReporter | undefined;
  /** Made on the first ctx.transaction or ctx.enqueue. */
  madeCommit: AttemptWrites | undefined;

  constructor(private readonly fields: ContextFields) {
    this.attempt = fields.attemptNumber;
    this.dataSource = fields.dataSource;
    this.workerId = fields.workerId;
    this.scheduledFor = fields.scheduledFor ?? null;
  }

  get signal(): AbortSignal {
    const { signal } = this.fields;
    return typeof signal === "function" ? signal() : signal;
  }

  get logger(): Logger {
    const { logger } = this.fields;
    this.madeLogger ??= typeof logger === "function" ? logger() : logger;
    return this.madeLogger;
  }

  get manager(): EntityManager {
    return this.dataSource.manager;
  }

  // transaction and resolve are getters returning functions, so that `run({ resolve })` (a
  // destructured context) still works, and only attempts that use them pay for the closure.
  get transaction(): TaskContext["transaction"] {
    return (fn) => {
      const commit = this.attemptCommit();
      return commit ? commit.transaction(fn) : Promise.reject(remoteCommit("ctx.transaction"));
    };
  }

  get enqueue(): TaskContext["enqueue"] {
    return (tasks) => {
      const commit = this.attemptCommit();
      if (!commit) throw remoteCommit("ctx.enqueue");
      commit.enqueue(tasks);
    };
  }

  /** The attempt's commit, made on first use; undefined where the worker writes the outcome. */
  private attemptCommit(): AttemptWrites | undefined {
    const { commit, task } = this.fields;
    if (!commit || !task) return undefined;
    this.madeCommit ??= commit(task);
    return this.madeCommit;
  }

  get dependencies(): TaskContext["dependencies"] {
    const read = this.fields.dependencies;
    return <T extends TaskInstance>() => (read ? (read(this.fields.taskId ?? "0") as Promise<T[]>) : Promise.resolve([] as T[]));
  }

  get dependencyCounts(): TaskContext["dependencyCounts"] {
    const count = this.fields.dependencyCounts;
    return () => (count ? count(this.fields.taskId ?? "0") : Promise.resolve({ open: 0, succeeded: 0, failed: 0, cancelled: 0, deleted: 0 }));
  }

  get children(): TaskContext["children"] {
    // By the base entity's name: this module does not import the entities (they import its types).
    return <T extends TaskInstance>() => this.dataSource.getRepository<T>("BaseTaskEntity").find({ where: { parentId: this.fields.taskId ?? "0" } as never, order: { id: "ASC" } as never });
  }

  get container(): DependencyContainer {
    if (!this.child) {
      // Per attempt, so services registered as ContainerScoped in the parent are per task.
      const child = (this.fields.container ?? rootContainer).createChildContainer();
      child.register(EntityManager, { useValue: this.dataSource.manager });
      child.register(DataSource, { useValue: this.dataSource });
      child.register(TaskLogger, { useValue: this.logger });
      child.register(TaskContextToken, { useValue: this });
      this.child = child;
    }
    return this.child;
  }

  get progress(): TaskContext["progress"] {
    const make = this.fields.progress;
    if (!make) return async (fraction, message) => void checkProgress(fraction, message);
    return (fraction, message) => (this.reporter ??= make({ id: this.fields.taskId ?? "", workerId: this.workerId, attempt: this.attempt, logger: this.logger })).report(fraction, message);
  }

  get resolve(): TaskContext["resolve"] {
    const resolver = this.fields.resolver;
    if (!resolver) return (token) => this.container.resolve(token);
    return <T>(token: InjectionToken<T>): T => {
      if (token === EntityManager) return this.dataSource.manager as T;
      if (token === DataSource) return this.dataSource as T;
      if (token === TaskLogger) return this.logger as T;
      if (token === TaskContextToken) return this as unknown as T;
      return resolver(token) as T;
    };
  }
}
