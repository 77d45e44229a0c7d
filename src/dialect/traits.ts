import type { DataSource, DataSourceOptions, QueryRunner } from "typeorm";
import type { Logger } from "../logger";
import type { Dialect, Tables } from "./dialect";

/** How a worker's dialect connects (PostgreSQL; SQLite ignores the pooler settings). */
export interface DialectOptions {
  /** A wait for a pool connection longer than this is logged. */
  slowConnectionMs: number;
  /**
   * "transaction": the DataSource goes through a transaction-mode pooler (PgBouncer): no session
   * state at all (unnamed statements, no LISTEN through it). "none": a direct connection, or a
   * session-mode pooler.
   */
  pooler: "none" | "transaction";
  /** A direct connection to PostgreSQL for LISTEN, when the DataSource's goes through a pooler. */
  listenUrl: string | null;
  /** The tag this DataSource's NOTIFYs carry (its client's `origin`): its own are ignored. */
  origin: string;
}

/** Options of bulkInsert. */
export interface BulkInsertOptions {
  /**
   * Rows may be skipped by the database (unique tasks' guard trigger): fewer rows come back, the
   * ones that went in, still in the order written.
   */
  maySkip?: boolean;
}

/** Runs one statement on the application's connection (a DataSource, or a QueryRunner in a transaction). */
export type Query = (sql: string, params: unknown[]) => Promise<unknown>;

/**
 * What differs between the databases outside the worker's own statements, as named capabilities:
 * shared code asks for a capability, never `if (postgres)`. One object per dialect
 * (postgres/traits.ts, sqlite/traits.ts); `traitsOf` in index.ts is the one place that picks.
 */
export interface DialectTraits {
  readonly name: "postgres" | "sqlite";
  /** The TypeORM driver (`DataSourceOptions.type`) it serves. */
  readonly driver: DataSourceOptions["type"];
  /**
   * The DataSource options of a database URL this dialect serves (`postgres://…`), or null when
   * the URL is not its own. The SQLite dialect takes any URL none other claims (a file path).
   */
  optionsForUrl(url: string): DataSourceOptions | null;
  /** The file a DataSource of this dialect keeps its database in; null for a server (or `:memory:`). */
  databaseFile(options: DataSourceOptions): string | null;
  /**
   * Writes to one database file take turns within a process (an embedded database): schedule
   * writes queue per file rather than fail busy (see scheduleStatements.ts inFileTurn).
   */
  readonly writesTakeTurnsPerFile: boolean;
  /**
   * A statement that returns the database's clock in epoch ms as `now`; null when the database's
   * clock is this host's (an embedded database).
   */
  readonly clockSql: string | null;
  /** The bind-parameter mark for the `n`-th parameter (1-based) of a statement. */
  parameter(n: number): string;
  /** Most bind parameters one statement may carry. */
  readonly maxParameters: number;
  /**
   * Multi-row inserts from one array per column (`unnest`; see bulkInsert). Null (the dialect has
   * none) or a null result (not for this table): VALUES lists.
   */
  readonly arrayInsert:
    | ((
        runner: QueryRunner,
        table: string,
        columns: readonly string[],
        rows: readonly unknown[][],
        returning: string | null,
        options?: BulkInsertOptions,
      ) => Promise<unknown[] | null>)
    | null;
  /**
   * Tells other processes' workers that tasks were committed (sent after the commit); null when
   * they notice commits on their own.
   */
  readonly notify: ((query: Query, announcements: Iterable<string>, origin: string) => Promise<void>) | null;
  /**
   * Whether `task.save()` of one task may run as its single INSERT, autocommitted, rather than in
   * a transaction of its own: each save has its own pooled connection (PostgreSQL). Not on
   * TypeORM's single SQLite connection, where a statement outside a transaction would join
   * whatever transaction another caller has open on it.
   */
  readonly autocommitSave: boolean;
  /**
   * The trigger that makes a duplicate unique task's insert write nothing (see
   * postgres/uniqueGuard.ts and sqlite/uniqueGuard.ts).
   */
  readonly uniqueGuard: {
    install(tasks: string): string[];
    drop(tasks: string): string[];
    /**
     * Whether it is installed, read on `runner` when given (the caller's connection, inside its
     * transaction): "committed" when the read could only see committed state (a connection of its
     * own), "seen" when it may include the caller's own uncommitted install, or "absent".
     */
    installed(dataSource: DataSource, tasks: string, runner?: QueryRunner): Promise<"committed" | "seen" | "absent">;
    /**
     * Whether the insert just made on `runner` was skipped by the guard, where the id cannot
     * tell: SQLite leaves TypeORM the connection's previous insert id (its last_insert_rowid).
     * Null where a skipped insert leaves no id (PostgreSQL: no RETURNING row).
     */
    insertSkipped: ((runner: QueryRunner) => Promise<boolean>) | null;
    /**
     * Installed when found missing even without `synchronize`: SQLite loses triggers whenever
     * TypeORM rebuilds the table (as its generated migrations do to add a column).
     */
    installWhenMissing: boolean;
  };
  /** Readies a DataSource for ormq, once (connection guards). */
  prepare(dataSource: DataSource): void;
  /** The worker-side dialect: claim, complete, heartbeat, rescue, listen. */
  createDialect(dataSource: DataSource, tables: Tables, workerId: string, logger: Logger, options: DialectOptions): Dialect;
}
