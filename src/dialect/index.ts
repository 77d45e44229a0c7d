import type { DataSource, QueryRunner } from "typeorm";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { TaskEventEntity } from "../../entities/TaskEventEntity";
import { WorkerEntity } from "../../entities/WorkerEntity";
import { OrmqConfigurationError } from "../errors";
import type { Logger } from "../logger";
import type { Dialect, Tables } from "./dialect";
import { PostgresDialect } from "./postgres/dialect";
import { notifyNewTasks } from "./postgres/listener";
import { SqliteDialect } from "./sqlite/dialect";
import { guardPostgresPool } from "./postgres/poolGuard";
import { guardSqliteConnection } from "./sqlite/connectionGuard";

export type { ClaimRequest, Completion, Dialect, FinalStatus, RescuedTask, TaskFilter, TaskRow, WakeHandler, WorkerInfo } from "./dialect";
export { outsideTransactions } from "./sqlite/connectionGuard";
export { writeFailureOf, type WriteFailure, type WriteFailureKind } from "./writeFailure";

type DialectName = "postgres" | "sqlite";

/** Which ormq dialect serves a DataSource; any other driver is a clear error. */
export function dialectOf(dataSource: DataSource): DialectName {
  const type = dataSource.options.type;
  if (type === "postgres") return "postgres";
  if (type === "better-sqlite3") return "sqlite";
  throw new OrmqConfigurationError(`ormq supports the "postgres" and "better-sqlite3" drivers, not "${type}"`);
}

/** ormq's tables, escaped (and schema-qualified when the entities name a schema) for raw SQL. */
export function tablesOf(dataSource: DataSource): Tables {
  const escaped = (entity: typeof BaseTaskEntity | typeof WorkerEntity | typeof TaskEventEntity) => {
    const metadata = dataSource.getMetadata(entity);
    return [metadata.schema, metadata.tableName]
      .filter((part): part is string => !!part)
      .map((part) => dataSource.driver.escape(part))
      .join(".");
  };
  return { tasks: escaped(BaseTaskEntity), workers: escaped(WorkerEntity), events: escaped(TaskEventEntity) };
}

/**
 * Opens the worker-side dialect for a DataSource. `slowConnectionMs`: a wait for a pooled
 * connection longer than this is logged (the worker passes its lease).
 */
export function createDialect(dataSource: DataSource, workerId: string, logger: Logger, options: { slowConnectionMs?: number } = {}): Dialect {
  const tables = tablesOf(dataSource);
  return dialectOf(dataSource) === "postgres"
    ? new PostgresDialect(dataSource, tables, workerId, logger, options.slowConnectionMs ?? 30_000)
    : new SqliteDialect(dataSource, tables, workerId, logger);
}

/**
 * Announces new tasks to other processes: a PostgreSQL NOTIFY, inside the inserting transaction
 * when `runner` has one open (delivered at its commit), else on its own. SQLite needs nothing:
 * its workers notice commits through `PRAGMA data_version`.
 */
export async function announceNewTasks(dataSource: DataSource, runner: QueryRunner | null, announcements: readonly string[]): Promise<void> {
  if (dialectOf(dataSource) !== "postgres") return;
  await notifyNewTasks((sql, params) => (runner ? runner.query(sql, params) : dataSource.query(sql, params)), announcements);
}

/**
 * Readies a DataSource for ormq, once: on SQLite, guards TypeORM's single connection so that
 * concurrent tasks' transactions and saves wait for each other instead of interleaving; on
 * PostgreSQL, keeps a connection the server ends from crashing the process.
 */
export function prepareDataSource(dataSource: DataSource): void {
  if (dialectOf(dataSource) === "sqlite") guardSqliteConnection(dataSource);
  else guardPostgresPool(dataSource);
}
