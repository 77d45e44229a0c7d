import { AfterInsert, AfterLoad, BaseEntity, BeforeInsert, Column, DataSource, Entity, type DeepPartial, Index, JoinColumn, ManyToOne, OneToMany, PrimaryGeneratedColumn, TableInheritance, type IndexOptions, type SaveOptions } from "typeorm";
import { OrmqConfigurationError } from "../src/errors";
import { checkDelay, checkMaxAttempts, checkPriority, checkQueue, checkRunAt, checkTimeout } from "../src/validation";
import { exponentialBackoff, type RetryPolicy } from "../src/retry/policies";
import type { TaskContext } from "../src/worker/context";
import { maybeTaskOperations, taskOperations, type CancelResult, type WaitOptions, type WaitResult } from "./operations";
import type { TaskStatus } from "./status";
import type { ConcurrencyLimitOption, FairnessOption, Loose, RateLimitOption, ScheduleOption, UniqueOption } from "./classOptions";

export { FINISHED_STATUSES, type TaskStatus } from "./status";
import { epochMillis } from "./transformers";


/**
 * Set on a task by ormq's subscriber as it handles the task's insert: without it, the DataSource
 * has no ormq subscriber (see `subscriberCheck`).
 */
export const SUBSCRIBER_SAW: unique symbol = Symbol("ormq.subscriberSaw");

/**
 * What a task's dependencies must do before it runs: "success" (`dependsOn`), or only "finish",
 * whatever their outcome (a batch's `onComplete`, see enqueueBatch). Kept on the task until its
 * edges are written.
 */
export const WAITS_FOR: unique symbol = Symbol("ormq.waitsFor");

/** Where `delay()` keeps its delay until insert, when it becomes `runAt` by the database clock. */
export const DELAY_MS: unique symbol = Symbol("ormq.delayMs");


/** One failed attempt, as kept in a task's `errors` list. */
export interface TaskErrorRecord {
  attempt: number;
  /** Epoch milliseconds (worker clock) when the attempt failed. */
  at: number;
  name: string;
  message: string;
  stack?: string;
  /** Set when the error came from a hook (error, shouldRetry, failed) rather than from run(). */
  hook?: string;
}

/**
 * The base of every task. All task classes share one table, `ormq_tasks` (single-table
 * inheritance); the `type` column holds each class's `@ChildEntity("key")`.
 *
 * A task class declares its own columns and `run()`, and its defaults as static properties:
 *
 * ```ts
 * @ChildEntity("send_email")
 * export class SendEmail extends BaseTaskEntity {
 *   static queue = "emails";
 *   static maxAttempts = 5;
 *   @Column() to!: string;
 *   async run(ctx: TaskContext) { return { sent: true }; }
 * }
 * await SendEmail.create({ to: "a@example.com" }).save(); // enqueues
 * ```
 *
 * State columns (status, attempts, lockedBy, …) belong to the worker: change them through ormq's
 * functions, never by saving a stale copy of the entity.
 */
@Entity("ormq_tasks")
@TableInheritance({ column: { type: "varchar", name: "type", length: 255 } })
// ormq's own indexes (src/dialect/taskIndexes.ts): partial, and the claim's with `priority DESC`,
// which no decorator can say on every database (TypeORM has no DESC, and ignores WHERE on MySQL).
// Declared here by name, with `synchronize: false`, so that TypeORM's synchronize neither makes
// them wrong nor drops them: ormq's migrations create them, and on a schema made by synchronize
// alone ormq does (a worker at its registration; the unique guard's install, the unique ones).
// The unique guard trigger (see the OrmqUniqueTasks migration) turns a duplicate insert into none.
@Index("ormq_tasks_claim", { synchronize: false })
@Index("ormq_tasks_scheduled", { synchronize: false })
@Index("ormq_tasks_lease", { synchronize: false })
// Its columns are declared (TypeORM's typings allow `synchronize: false` only without them): an
// index on the discriminator column stops TypeORM from adding its own, on every row, which would
// take a new entry on each claim and each completion (neither can be a HOT update) for queries that
// never use it (the claim reads the claim index and filters by type).
@Index("ormq_tasks_type", ["type"], { where: `status = 'failed'`, synchronize: false } as IndexOptions)
@Index("ormq_tasks_unique", { synchronize: false })
@Index("ormq_tasks_unique_window", { synchronize: false })
@Index("ormq_tasks_parent", { synchronize: false })
@Index("ormq_tasks_waiting", { synchronize: false })
@Index("ormq_tasks_fair", { synchronize: false })
export abstract class BaseTaskEntity extends BaseEntity {
  /** Queue a task of this class goes to, unless set on the instance. */
  static queue = "default";
  /** Priority of this class's tasks, unless set on the instance. Higher runs first. */
  static priority = 0;
  /** Attempts before a task of this class gives up, unless set on the instance. */
  static maxAttempts = 5;
  /** When a failed task runs again, or null to give up (`maxAttempts` caps it either way). */
  static retry: RetryPolicy = exponentialBackoff();
  /** Run-time limit of this class's tasks in ms, unless set on the instance; undefined: none. */
  static timeoutMs: number | undefined = undefined;
  /** Record this class's transitions in `ormq_task_events`. Turn off for raw throughput. */
  static history = true;
  /**
   * Keep a task of this class once it succeeded (the default), or delete its row in the same
   * guarded write that ends the attempt. Deleting is the cheaper write (no new row version, no
   * index entries), for high-volume tasks whose success needs no record; the result is dropped
   * with the row. Failed and cancelled tasks are always kept.
   */
  static keepSucceeded = true;
  /**
   * Where `run()` runs: `"async"` on the worker's event loop (the default, right for I/O);
   * `"thread"` in the worker's thread pool, for CPU-bound work that would otherwise stall
   * heartbeats and other tasks; `"process"` in a pool of child processes, for tasks that may
   * crash (native code), run out of memory or leak, which would take a thread's whole process
   * down. A thread or process class must also say where it lives (`static module`).
   */
  static executor: Loose<"async" | "thread" | "process"> = "async";
  /**
   * The compiled module that defines this class (`static module = __filename`), which a task
   * thread or process loads. Needed only with `executor = "thread"` or `"process"`.
   */
  static module: string | undefined = undefined;
  /**
   * With `executor = "process"`: the heap, in MB, a run may use (its process's V8 heap limit). A
   * run past it fails its attempt with TaskMemoryLimitError and its process is replaced. Memory
   * outside the V8 heap (Buffers, native allocations) is not counted. Unset: Node's default.
   */
  static memoryLimitMb: number | undefined = undefined;
  /**
   * At most one unfinished task of this class per combination of these columns, enforced by the
   * database: `{ by: ["accountId"], onConflict: "skip" | "replace" | "error", within?: "1h" }`.
   * See docs/flow-control.md.
   */
  static unique: UniqueOption | undefined = undefined;
  /**
   * At most this many tasks of this class running (claimed) at once across every worker:
   * `2`, or `{ max: 2, by: "accountId" }` per value of a column. See docs/flow-control.md.
   */
  static concurrencyLimit: ConcurrencyLimitOption | undefined = undefined;
  /**
   * At most `max` tasks of this class claimed in any `perMs` window across every worker, in all
   * or per value of a column (`by`): `{ max: 100, perMs: 60_000 }`. See docs/flow-control.md.
   */
  static rateLimit: RateLimitOption | undefined = undefined;
  /**
   * Fair shares between the values of a column (tenants): `{ by: "tenantId", weights?: { acme: 3 } }`.
   * Ready tasks of this class are claimed round-robin across the values, within priority, across
   * every worker, so one busy value cannot starve the others. See docs/flow-control.md.
   */
  static fairness: FairnessOption | undefined = undefined;
  /**
   * Enqueues a task of this class at every tick of a cron expression, once per tick across every
   * worker: `"0 2 * * *"`, or `{ cron, timezone, catchUp, data }`. See docs/scheduling.md.
   */
  static schedule: ScheduleOption | string | undefined = undefined;
  /**
   * What a task of this class does when a task it depends on (`dependsOn`) fails for good, is
   * cancelled or is deleted: "fail" (the default) or "cancel" it, and its own dependents in turn;
   * or "run" it anyway once its other dependencies are done.
   */
  static onDependencyFailure: "fail" | "cancel" | "run" = "fail";

  /** 64-bit, exposed as a string on both dialects (exact over the whole range). */
  @PrimaryGeneratedColumn("increment", { type: "bigint" })
  id!: string;

  /** The discriminator: the key given to `@ChildEntity`. Set by TypeORM. */
  @Column({ type: "varchar", length: 255 })
  type!: string;

  @Column({ type: "varchar", length: 255 })
  queue!: string;

  @Column({ type: "varchar", length: 16, default: "pending" })
  status!: TaskStatus;

  @Column({ type: "integer" })
  priority!: number;

  /** When the task becomes ready. Compared with the database's clock by the claim. */
  @Column({ name: "run_at", type: "bigint", transformer: epochMillis })
  runAt!: Date;

  /** Attempts started so far; counted at claim, so the first run sees 1. */
  @Column({ type: "integer", default: 0 })
  attempts!: number;

  @Column({ name: "max_attempts", type: "integer" })
  maxAttempts!: number;

  @Column({ name: "last_error", type: "text", nullable: true })
  lastError!: string | null;

  /** Each failed attempt's error, oldest first, capped to the most recent ones. */
  @Column({ type: "simple-json", nullable: true })
  errors!: TaskErrorRecord[] | null;

  /** What `run()` returned, as JSON. */
  @Column({ type: "simple-json", nullable: true })
  result!: unknown;

  @Column({ name: "created_at", type: "bigint", transformer: epochMillis })
  createdAt!: Date;

  @Column({ name: "updated_at", type: "bigint", transformer: epochMillis })
  updatedAt!: Date;

  @Column({ name: "started_at", type: "bigint", nullable: true, transformer: epochMillis })
  startedAt!: Date | null;

  @Column({ name: "finished_at", type: "bigint", nullable: true, transformer: epochMillis })
  finishedAt!: Date | null;

  /** The worker holding the task while it runs. */
  @Column({ name: "locked_by", type: "varchar", length: 255, nullable: true })
  lockedBy!: string | null;

  /** End of the running worker's lease, by the database clock. */
  @Column({ name: "locked_until", type: "bigint", nullable: true, transformer: epochMillis })
  lockedUntil!: Date | null;

  /** Per-task run time limit in milliseconds; overrides the class's. */
  @Column({ name: "timeout_ms", type: "integer", nullable: true })
  timeoutMs!: number | null;

  /** Set when someone asks a running task to stop; the worker running it notices. */
  @Column({ name: "cancel_requested_at", type: "bigint", nullable: true, transformer: epochMillis })
  cancelRequestedAt!: Date | null;

  /**
   * The task's unique key (`static unique`): the class's key and the values of its `by` columns.
   * Set at enqueue; null for classes without `unique`.
   */
  @Column({ name: "unique_key", type: "text", nullable: true })
  uniqueKey!: string | null;

  /** The unique key and its window (`unique.within`), held whatever the task's status. */
  @Column({ name: "unique_window", type: "text", nullable: true })
  uniqueWindow!: string | null;

  /**
   * The task whose attempt enqueued this one with `ctx.enqueue` (it committed with that attempt's
   * success), or null.
   */
  @Column({ name: "parent_id", type: "bigint", nullable: true })
  parentId!: string | null;

  /**
   * The parent task, as a relation (`find({ relations: { parent: true } })`, joins). No foreign key
   * constraint: a finished parent may be pruned, or deleted on success (`keepSucceeded = false`),
   * while its children stay, and a queue table's deletes must not wait on a check of every child.
   */
  @ManyToOne(() => BaseTaskEntity, (task) => task.children, { createForeignKeyConstraints: false })
  @JoinColumn({ name: "parent_id" })
  parent?: BaseTaskEntity | null;

  /** The tasks this one's attempts enqueued with `ctx.enqueue`, as a relation. */
  @OneToMany(() => BaseTaskEntity, (task) => task.parent)
  children?: BaseTaskEntity[];

  /**
   * The trace context the task was enqueued in (W3C `traceparent` and `tracestate`, as JSON), set
   * by ormq/opentelemetry's enqueue middleware so that the task's attempts (and its children) are
   * traced as part of the request that enqueued it; null without it. Read leniently: a value that
   * is not a trace context is ignored, never an attempt's failure.
   */
  @Column({ name: "trace_context", type: "varchar", length: 1024, nullable: true })
  traceContext!: string | null;

  /**
   * The task's share key under `static fairness`: its `by` column's value as stored, as text
   * (bounded: a long value is kept as its head and a digest). Set at enqueue; null for classes
   * without fairness.
   */
  @Column({ name: "fair_key", type: "varchar", length: 255, nullable: true })
  fairKey!: string | null;

  /** The schedule that enqueued this task (its name), or null. Its tick is the task's `runAt`. */
  @Column({ name: "schedule_name", type: "varchar", length: 255, nullable: true })
  scheduleName!: string | null;

  /** The last progress a run reported (`ctx.progress`), 0..1, or null. */
  @Column({ type: "double precision", nullable: true })
  progress!: number | null;

  /** The message that came with it, or null. */
  @Column({ name: "progress_message", type: "varchar", length: 200, nullable: true })
  progressMessage!: string | null;

  /**
   * Not a column: after `save()` or `enqueueMany` of a unique class, true when no new task was
   * written because a task with the same key stands; `id` is then that task's.
   */
  deduplicated?: boolean;

  /** Not a column: true when the standing pending task took this one's data and runAt (`onConflict: "replace"`). */
  replaced?: boolean;

  /**
   * Not a column: the tasks this one waits for (saved tasks, their ids, or tasks saved in the same
   * transaction). It is inserted `waiting`, and becomes pending once every one of them succeeded;
   * one that fails for good, is cancelled or is deleted settles it by the class's
   * `onDependencyFailure`. Written to `ormq_task_dependencies` when the enqueue commits.
   */
  dependsOn?: readonly (BaseTaskEntity | string)[];

  /** Not a column: what its dependencies must do (see WAITS_FOR); "success" unless enqueueBatch says. */
  [WAITS_FOR]?: "success" | "finish";

  /** Not a column: the delay given to `delay()`, turned into `runAt` at insert. */
  [DELAY_MS]?: number;

  /**
   * Does the work. The returned value is stored in `result`; a thrown error counts as a failed
   * attempt and is retried while attempts remain and the retry policy agrees. Throw `SnoozeTask`
   * to come back later without using an attempt, or `CancelTask` to stop for good.
   */
  abstract run(ctx: TaskContext): unknown; // a value, or a promise of one

  /** Called in the worker after each failed attempt of run() (a thrown error or a timeout). Optional. */
  error?(err: Error, ctx: TaskContext): Promise<void> | void;

  /** Overrides the retry policy for one failure: true retries, false gives up, undefined defers. Optional. */
  shouldRetry?(err: Error, ctx: TaskContext): Promise<boolean | undefined> | boolean | undefined;

  /** Called once when the task gives up for good. Optional. */
  failed?(err: Error, ctx: TaskContext): Promise<void> | void;

  /** Sends the task to `queue` (1–100 letters, digits, `_ - . :`). Chainable, before save(). */
  onQueue(queue: string): this {
    this.queue = checkQueue(queue, "onQueue(queue)");
    return this;
  }

  /** Makes the task ready `ms` from now, by the database's clock at insert. Chainable. */
  delay(ms: number): this {
    this[DELAY_MS] = checkDelay(ms, "delay(ms)");
    (this as { runAt?: Date }).runAt = undefined; // the last of delay() / runAtTime() wins
    return this;
  }

  /** Makes the task ready at `date`. Chainable. */
  runAtTime(date: Date): this {
    this.runAt = checkRunAt(date, "runAtTime(date)");
    delete this[DELAY_MS];
    return this;
  }

  /** Higher runs first. Chainable. */
  withPriority(priority: number): this {
    this.priority = checkPriority(priority, "withPriority(priority)");
    return this;
  }

  /** Attempts before giving up. Chainable. */
  withMaxAttempts(maxAttempts: number): this {
    this.maxAttempts = checkMaxAttempts(maxAttempts, "withMaxAttempts(n)");
    return this;
  }

  /** Run-time limit of this task in ms. Chainable. */
  withTimeout(ms: number): this {
    this.timeoutMs = checkTimeout(ms, "withTimeout(ms)");
    return this;
  }

  /**
   * TypeORM's `create()`, which copies only columns and relations, also carries `dependsOn` over
   * (`Task.create({ ..., dependsOn: [a, b] })`).
   */
  static override create<T extends BaseEntity>(this: { new (): T } & typeof BaseEntity): T;
  static override create<T extends BaseEntity>(this: { new (): T } & typeof BaseEntity, entityLikeArray: DeepPartial<T>[]): T[];
  static override create<T extends BaseEntity>(this: { new (): T } & typeof BaseEntity, entityLike: DeepPartial<T>): T;
  static override create(this: typeof BaseEntity, entityOrEntities?: unknown): unknown {
    const create = BaseEntity.create as (this: typeof BaseEntity, entityOrEntities?: unknown) => unknown;
    const made = entityOrEntities === undefined ? create.call(this) : create.call(this, entityOrEntities);
    const carry = (from: unknown, to: unknown) => {
      const dependsOn = (from as { dependsOn?: unknown } | null)?.dependsOn;
      if (dependsOn !== undefined && to instanceof BaseTaskEntity) to.dependsOn = dependsOn as BaseTaskEntity["dependsOn"];
    };
    if (Array.isArray(entityOrEntities) && Array.isArray(made)) entityOrEntities.forEach((from, i) => carry(from, made[i]));
    else carry(entityOrEntities, made);
    return made;
  }

  /**
   * Enqueues this task (TypeORM's `save()`). On PostgreSQL a task with no cascading relation is
   * one autocommitted INSERT, not a transaction of three statements (see taskSaveOptions);
   * `{ transaction: true }` asks for the transaction. Inside a transaction use its manager's
   * `save()`, as usual.
   */
  override save(options?: SaveOptions): Promise<this> {
    const repository = (this.constructor as unknown as typeof BaseEntity).getRepository();
    const operations = maybeTaskOperations();
    return super.save(operations ? operations.saveOptions(repository.manager.connection, repository.metadata, options, this) : options);
  }

  /**
   * Cancels this task (see `cancelTask`): a pending task at once, a running one through its
   * worker. Resolves with what happened.
   */
  cancel(options: { reason?: string } = {}): Promise<CancelResult> {
    const dataSource = (this.constructor as unknown as typeof BaseEntity & { getRepository(): { manager: { connection: DataSource } } })
      .getRepository().manager.connection;
    return taskOperations().cancel(this.id, { dataSource, reason: options.reason });
  }

  /**
   * Waits for this saved task to finish (see `waitForResult`): resolves with its result when it
   * succeeds, rejects with `TaskFailedError`, `TaskCancelledError` or `WaitTimeoutError`.
   */
  waitForResult<R = unknown>(options: WaitOptions = {}): Promise<WaitResult<R>> {
    const dataSource = (this.constructor as unknown as typeof BaseEntity & { getRepository(): { manager: { connection: DataSource } } })
      .getRepository().manager.connection;
    return taskOperations().waitForResult(this.id, { dataSource, ...options }) as Promise<WaitResult<R>>;
  }

  /**
   * A DataSource built without ormq's subscriber (the TypeORM habit `entities: [...ormqEntities,
   * MyTask]` without `subscribers`) would insert a task without its defaults and fail on a NOT NULL
   * column: say what is missing instead. TypeORM calls entity listeners, then subscribers, in one
   * synchronous pass and awaits both: the subscriber marks the task before its first await, so one
   * microtask later the mark tells whether it ran.
   */
  @BeforeInsert()
  protected subscriberCheck(): Promise<void> {
    return Promise.resolve().then(() => {
      if (this[SUBSCRIBER_SAW]) return;
      throw new OrmqConfigurationError(
        "ormq's subscriber is not registered on this DataSource, so tasks cannot be enqueued: add ...ormqSubscribers to its `subscribers` (or build its options with ormqDataSourceOptions())",
      );
    });
  }

  /** Not a column: see subscriberCheck. */
  [SUBSCRIBER_SAW]?: boolean;

  // node-postgres returns bigint as a string, better-sqlite3 as a number: keep one type.
  @AfterInsert()
  @AfterLoad()
  protected normalizeId(): void {
    if (this.id !== undefined && this.id !== null && typeof this.id !== "string") this.id = String(this.id);
  }
}
