import type { DataSource, EntityManager } from "typeorm";
import type { Logger } from "../logger";

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
   * Runs `fn` in a transaction (`dataSource.transaction(fn)`). On SQLite, where TypeORM has one
   * connection per DataSource, ormq makes concurrent tasks' transactions and saves wait for each
   * other rather than interleave (see `dialect/sqliteConnectionGuard.ts`).
   */
  transaction<T>(fn: (manager: EntityManager) => Promise<T>): Promise<T>;
}
