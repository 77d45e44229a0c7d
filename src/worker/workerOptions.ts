import type { DependencyContainer } from "tsyringe";
import type { DataSource } from "typeorm";
import type { TaskStatus } from "../../entities/status";
import type { Logger } from "../logger";
import type { OrmqMetrics } from "../metrics";
import type { AttemptFinished } from "./attemptFinished";

/**
 * Options of `processOne`, `processN` and `processForever`. Those listed in `WORKER_SETTINGS` can
 * also be set by an `ORMQ_…` environment variable, which wins over the value given here (so
 * operators can tune a deployed worker without a code change); the `ormq` CLI's flags win over both.
 */
export interface WorkerOptions {
  /** The DataSource to work on. Default: the one the task class is bound to (BaseEntity). */
  dataSource?: DataSource;
  /** Only these task types (discriminator keys) of the class given. Default: all of them. */
  types?: string[];
  /** Queues to take tasks from. Default: every queue. */
  queues?: string[];
  /** Tasks run at once. Default 10. */
  concurrency?: number;
  /** Most tasks taken by one claim. Default: the concurrency plus `prefetch`; with "auto", 500 (or the concurrency, if larger). */
  batchSize?: number;
  /**
   * Tasks claimed ahead of free slots and kept waiting here, so that a slot that frees never
   * waits for a claim round trip. They are held like running tasks (their lease is renewed) and
   * handed back, attempt not counted, when the worker stops. Worth it for many short tasks; for
   * long ones it makes tasks wait here while another worker may be idle.
   * Default "auto": sized from the observed run and claim times (none until a run has finished;
   * no-op tasks get up to 500 held in all; tasks far longer than a claim get none). A number
   * fixes it; 0 claims only for free slots.
   */
  prefetch?: number | "auto";
  /**
   * PostgreSQL: "transaction" when the DataSource connects through a transaction-mode pooler
   * (PgBouncer's `pool_mode = transaction`): the worker keeps no session state (unnamed
   * statements; no LISTEN through the pooler: give `listenUrl`, or it polls). Default "none".
   * Without it behind such a pooler, the first lost prepared statement switches the worker to
   * unnamed statements with a warning.
   */
  pooler?: "none" | "transaction";
  /**
   * PostgreSQL: a connection string straight to the server (not through the pooler) for the
   * worker's LISTEN, so wake-ups work behind a pooler. One session connection per worker.
   */
  listenUrl?: string;
  /**
   * Whether this worker enqueues the tasks of schedules (`static schedule`, `createSchedule`).
   * Default true: every worker may, and each tick still becomes one task.
   */
  scheduler?: boolean;
  /** How often an idle worker looks for tasks when no wake-up came. Default 1000 ms. */
  pollIntervalMs?: number;
  /** On stop, how long running tasks may finish before their signal aborts. Default 10000 ms. */
  gracePeriodMs?: number;
  /** How long a claimed task is held before another worker may rescue it. Default 30000 ms. */
  leaseMs?: number;
  /** How often the worker renews its tasks' leases and its own heartbeat. Default 5000 ms; at most half the lease. */
  heartbeatIntervalMs?: number;
  /** How often the worker looks for expired leases to rescue. Default 5000 ms (±20%). */
  rescueIntervalMs?: number;
  /**
   * Runs that a timeout or cancel abandoned (run() ignored its signal) and that still run: at
   * this many the worker stops claiming and its process function rejects with
   * `WorkerNeedsRestartError`. Default 5.
   */
  maxAbandonedRuns?: number;
  /**
   * How long each hook (`error()`, `shouldRetry()`, the retry policy, `failed()`) may take. One
   * that takes longer counts as having thrown a `HookTimeoutError` (the task's outcome stands and
   * is written) and is counted with the abandoned runs while it still runs. Default 30000 ms.
   */
  hookTimeoutMs?: number;
  /**
   * Prune finished tasks from this worker every `intervalMs` (default one hour): those that
   * finished more than `olderThan` ms ago, in `statuses` (default succeeded and cancelled).
   */
  prune?: { olderThan: number; statuses?: TaskStatus[]; intervalMs?: number };
  /** Stops the worker when aborted (gracefully, as SIGTERM does). */
  signal?: AbortSignal;
  /** Where ormq logs. Default: pino at `logLevel`, pretty in a terminal and JSON otherwise. */
  logger?: Logger;
  /** The level of ormq's default logger (not of a `logger` you pass). Default `info`. */
  logLevel?: string;
  /**
   * The tsyringe container tasks resolve their services from (`ctx.resolve(Mailer)`): each attempt
   * gets a child container of it. Default: tsyringe's root container.
   */
  container?: DependencyContainer;
  /** Size of the worker_threads pool for `static executor = "thread"` tasks. Default min(concurrency, CPUs). */
  threads?: number;
  /** Size of the process pool for `static executor = "process"` tasks. Default min(concurrency, CPUs). */
  taskProcesses?: number;
  /** A task process is replaced after this many attempts, so that leaks do not pile up. Default 1000. */
  taskProcessMaxTasks?: number;
  /** A task process holding more than this many MB resident after an attempt is replaced. Default 1024. */
  taskProcessRecycleMb?: number;
  /**
   * The module a task thread or process loads before running its tasks: it exports the DataSource
   * it works with (`dataSource` or default) and optionally a tsyringe `container`. Required when a
   * class declares `static executor = "thread"` or `"process"`.
   */
  bootstrap?: string;
  /** Prometheus metrics to record into (see `createMetrics`). */
  metrics?: OrmqMetrics;
  /** Called after each attempt's outcome is written (progress displays, custom metrics). */
  onAttemptFinished?: (event: AttemptFinished) => void;
}


/** Where settings come from besides code: the environment (default `process.env`) and CLI flags. */
export interface SettingSources {
  env?: Record<string, string | undefined>;
  flags?: Record<string, string | undefined>;
}

