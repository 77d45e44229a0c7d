/**
 * The contract a database fills to serve ormq: one object per database (`postgres/contract.ts`,
 * `sqlite/contract.ts`), grouped by job. `index.ts` is the one place that picks one.
 *
 * What a database must give, and what it may take from the shared statements:
 * - `connection`, `sql`, `clock`, `schema`, `enqueue`: the parts below, each its own.
 * - `worker`: the worker's session (`Dialect` in dialect.ts: claim, complete, heartbeat, rescue,
 *   controls, listen), its own statements, tuned per database.
 * - Everything else (the admin's reads and writes, schedules, leases, prune, unique keys) is
 *   written once in the shared modules beside this file, through TypeORM's query builder or with
 *   the `sql` parts here, and every database runs it as it is: that is the delegation (as Oban's
 *   Dolphin engine delegates to Basic). A database that needs its own statement for one of them
 *   gets a capability here, named for what it does, never an `if (database)` in shared code.
 *
 * A new database implements this and passes the conformance suite (tests/dialect/).
 */
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
  /**
   * Told each time a transaction or statement is run again after a transient failure (MySQL's
   * deadlock or lock wait timeout): the worker's metrics count them.
   */
  onTransientRetry?: (reason: TransientReason) => void;
}

/** Why the database refused a transaction that runs again as it was. */
export type TransientReason = "deadlock" | "lock_wait_timeout";

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
 * How one statement's text is spelled on a database, binding its values in text order into the
 * array it was made for (`SqlSpelling.parts(values)`). Shared statements (limitedClaim.ts,
 * controlsRead.ts) are written with these and nothing database-specific.
 */
export interface SqlParts {
  /** A bind parameter, cast to `type` where the database needs it. */
  param(value: unknown, type: "text" | "int" | "bigint"): string;
  /** `column IN (…)` for a list of text values (empty: false). */
  inList(column: string, values: readonly string[]): string;
  /** `column NOT IN (…)` (empty: true). */
  notInList(column: string, values: readonly string[]): string;
  /** `column IN (…)` for task ids (through the primary key). */
  inIds(column: string, ids: readonly string[]): string;
  /** Row lock for the candidates ("" where the database has one writer, or the caller serialises). */
  lockRows: string;
  /**
   * A condition that holds for every task, ANDed to a read of ready tasks in claim order so that
   * the database reads the claim index in order ("" where nothing is needed; see PostgreSQL's).
   */
  inClaimOrder: string;
  /** A quoted identifier (a column whose name is a keyword somewhere, as `key`). */
  escape(name: string): string;
  /** Text expressions joined end to end. */
  concat(...parts: string[]): string;
  /** An expression as text. */
  castText(expression: string): string;
  /**
   * `name AS (…)` for a common table expression that must be computed once, before the statement
   * that reads it (PostgreSQL would otherwise inline it into each reader).
   */
  materialized(name: string): string;
  /**
   * A key expression (text) bounded to what ormq_rate_claims.key holds: a long key is replaced by
   * its head and a digest, so a long `by` value can never make a claim fail. The identity where
   * the column has no length limit (SQLite's text).
   */
  boundedKey(expression: string): string;
}

/** A database's SQL spelling. */
export interface SqlSpelling {
  /** The bind-parameter mark for the `n`-th parameter (1-based) of a statement. */
  parameter(n: number): string;
  /** Most bind parameters one statement may carry. */
  readonly maxParameters: number;
  /** A quoted identifier. */
  escape(name: string): string;
  /** Integer division of two integer expressions (MySQL's `/` gives a decimal). */
  intDiv(a: string, b: string): string;
  /**
   * Whether a read can lock the rows it returns (FOR UPDATE, FOR SHARE): false where writes take
   * turns on the whole database (SQLite), so there is nothing to lock.
   */
  readonly rowLocks: boolean;
  /**
   * A statement that makes the server end the current transaction, and free its locks, when its
   * client leaves it idle for `ms` (PostgreSQL's idle_in_transaction_session_timeout, for this
   * transaction only); undefined where the database has no such limit per transaction. For
   * ctx.transaction, which holds the task's row from its guarded write to its commit: a worker
   * cut off from the database between the two must not hold that row for ever, or no other
   * worker could rescue the task.
   */
  idleTransactionLimit?(ms: number): string;
  /** The parts of one statement, pushing its bound values onto `values` in text order. */
  parts(values: unknown[]): SqlParts;
}

/** An index of ormq's tables, as the migrations create it. */
export interface IndexSpec {
  name: string;
  /** Escaped, possibly schema-qualified. */
  table: string;
  /** Column names, each optionally followed by ` DESC`. */
  columns: readonly string[];
  unique?: boolean;
  /** Only rows that match (a partial index), where the database has them. */
  where?: string;
  /** Nothing when an index of that name exists. */
  ifNotExists?: boolean;
  /**
   * What a database without partial indexes (MySQL) makes of a `where`: an index that leads with
   * these columns (the ones the WHERE tests for equality), one over every row ("whole": the WHERE
   * only said what a unique index does with NULLs), or none ("none": another capability of that
   * database does the index's job, as MySQL's unique guard does `ormq_tasks_unique`'s).
   */
  withoutWhere?: { lead: readonly string[] } | "whole" | "none";
}

/** Where the SQLite-style unique guard reports its state (see uniqueTasks.ts). */
export type GuardState = "committed" | "seen" | "absent";

/** A database as ormq uses it, grouped by job. */
export interface DatabaseContract {
  readonly name: "postgres" | "sqlite" | "mysql";

  /** Which DataSources and URLs it serves, and readying one. */
  readonly connection: {
    /** The TypeORM drivers (`DataSourceOptions.type`) it serves. */
    readonly drivers: readonly DataSourceOptions["type"][];
    /**
     * The DataSource options of a database URL this database serves (`postgres://…`), or null
     * when the URL is not its own. SQLite takes any URL none other claims (a file path).
     */
    optionsForUrl(url: string): DataSourceOptions | null;
    /** The file a DataSource of it keeps its database in; null for a server (or `:memory:`). */
    databaseFile(options: DataSourceOptions): string | null;
    /**
     * Writes to one database file take turns within a process (an embedded database): schedule
     * writes queue per file rather than fail busy (see scheduleStatements.ts inFileTurn).
     */
    readonly writesTakeTurnsPerFile: boolean;
    /**
     * Readies a DataSource for ormq (connection guards). True once it is done; false when it
     * could not be yet (a connection busy in a transaction, a DataSource not initialized): the
     * client asks again at the next enqueue or task start, and never once it is done.
     */
    prepare(dataSource: DataSource): boolean;
  };

  /** How its statements are spelled. */
  readonly sql: SqlSpelling;

  /**
   * A statement that returns the database's clock in epoch ms as `now`; null when the database's
   * clock is this host's (an embedded database).
   */
  readonly clockSql: string | null;

  /** What the migrations and the unique guard create. */
  readonly schema: {
    /**
     * DDL commits the open transaction (MySQL): ormq never runs DDL on a caller's connection, so
     * a missing unique guard is an error naming the migration, whatever `synchronize` says.
     */
    readonly ddlCommits: boolean;
    /** The type of a generated 64-bit key (SQLite's AUTOINCREMENT needs `integer`, 64-bit there). */
    readonly generatedIdType: "bigint" | "integer";
    /** CREATE INDEX for an index of ormq's tables; null when this database keeps no such index. */
    createIndex(index: IndexSpec): string | null;
    /** DROP INDEX for an index of ormq's tables (as `createIndex` made it); null when it made none. */
    dropIndex(index: Pick<IndexSpec, "name" | "table" | "where" | "withoutWhere">): string | null;
    /**
     * The guard that makes a duplicate unique task's insert write nothing (see
     * postgres/uniqueGuard.ts and sqlite/uniqueGuard.ts): its statements, and whether it stands.
     */
    readonly uniqueGuard: {
      install(tasks: string): string[];
      drop(tasks: string): string[];
      /**
       * Whether it is installed, read on `runner` when given (the caller's connection, inside its
       * transaction): "committed" when the read could only see committed state (a connection of
       * its own), "seen" when it may include the caller's own uncommitted install, or "absent".
       */
      installed(dataSource: DataSource, tasks: string, runner?: QueryRunner): Promise<GuardState>;
      /**
       * Installed when found missing even without `synchronize`: SQLite loses triggers whenever
       * TypeORM rebuilds the table (as its generated migrations do to add a column).
       */
      readonly installWhenMissing: boolean;
    };
  };

  /** Writing new tasks, and telling workers about them. */
  readonly enqueue: {
    /**
     * Multi-row inserts that return the generated ids where the server has no `INSERT …
     * RETURNING` (MySQL 8; see mysql/insertIds.ts). Null (every server of the database has it) or
     * a null result (this server has it): VALUES lists with RETURNING. `columns` are quoted.
     */
    readonly insertWithoutReturning:
      | ((runner: QueryRunner, table: string, columns: readonly string[], rows: readonly unknown[][], options: BulkInsertOptions) => Promise<unknown[] | null>)
      | null;
    /**
     * Multi-row inserts from one array per column (`unnest`; see bulkInsert). Null (the database
     * has none) or a null result (not for this table): VALUES lists.
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
     * Whether `task.save()` of one task may run as its single INSERT, autocommitted, rather than
     * in a transaction of its own: each save has its own pooled connection (PostgreSQL). Not on
     * TypeORM's single SQLite connection, where a statement outside a transaction would join
     * whatever transaction another caller has open on it.
     */
    readonly autocommitSave: boolean;
    /**
     * Whether the insert just made on `runner` was skipped by the unique guard, where the id
     * cannot tell: SQLite leaves TypeORM the connection's previous insert id (its
     * last_insert_rowid). Null where a skipped insert leaves no id (PostgreSQL: no RETURNING row).
     */
    readonly insertSkipped: ((runner: QueryRunner) => Promise<boolean>) | null;
    /**
     * A duplicate unique task fails its INSERT (MySQL: 1062, that statement rolled back, never the
     * transaction) instead of writing nothing: an insert whose rows may be skipped goes row by row.
     */
    readonly duplicateFails: boolean;
    /**
     * Tells other processes' workers that tasks were committed (sent after the commit); null when
     * they notice commits on their own.
     */
    readonly notify: ((query: Query, announcements: Iterable<string>, origin: string) => Promise<void>) | null;
  };

  /** The worker's session: claim, complete, heartbeat, rescue, controls, listen (dialect.ts). */
  worker(dataSource: DataSource, tables: Tables, workerId: string, logger: Logger, options: DialectOptions): Dialect;
}
