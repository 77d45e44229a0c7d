import type { DataSource, DataSourceOptions } from "typeorm";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { TaskEventEntity } from "../../entities/TaskEventEntity";
import { WorkerEntity } from "../../entities/WorkerEntity";
import { ControlEntity, MetaEntity, RateClaimEntity } from "../../entities/ControlEntity";
import { TaskDependencyEntity } from "../../entities/TaskDependencyEntity";
import { OrmqConfigurationError } from "../errors";
import type { Logger } from "../logger";
import type { Dialect, Tables } from "./dialect";
import { newOrigin } from "./origin";
import type { DatabaseContract, DialectOptions } from "./contract";
import { mysqlContract } from "./mysql/contract";
import { postgresContract } from "./postgres/contract";
import { sqliteContract } from "./sqlite/contract";

export type { ClaimLimits, ClaimRequest, Completion, Controls, Dialect, FinalStatus, Renewal, RescuedTask, ClaimFilter, TaskRow, WakeHandler, WorkerInfo } from "./dialect";
export { outsideTransactions } from "./sqlite/connectionGuard";
/** SQLite's 64-bit generated key in TypeORM's DDL (see sqlite/integerKey.ts): installed once per process. */
export { installSqliteIntegerKey } from "./sqlite/integerKey";
export { guardSqliteRunnersWhenMade, ORMQ_SUBSCRIBER } from "./sqlite/connectionGuard";
export type { DatabaseContract, Query } from "./contract";
export { writeFailureOf, type WriteFailure, type WriteFailureKind } from "./writeFailure";

/** Every database's contract, in the order a database URL is offered to them (the last takes any path). */
const ALL_CONTRACTS: readonly DatabaseContract[] = [postgresContract, mysqlContract, sqliteContract];

/**
 * The one place that decides which database's contract serves a DataSource (by its driver). Any
 * other driver is a clear error.
 */
export function contractOf(dataSource: DataSource): DatabaseContract {
  const type = dataSource.options.type;
  const contract = ALL_CONTRACTS.find((c) => c.connection.drivers.includes(type));
  if (contract) return contract;
  const drivers = ALL_CONTRACTS.flatMap((c) => c.connection.drivers).map((d) => `"${d}"`);
  throw new OrmqConfigurationError(`ormq supports the ${drivers.slice(0, -1).join(", ")} and ${drivers.at(-1)} drivers, not "${type}"`);
}

/** The DataSource options of a database URL: the first dialect that claims it. */
export function dataSourceOptionsForUrl(url: string): DataSourceOptions {
  for (const contract of ALL_CONTRACTS) {
    const options = contract.connection.optionsForUrl(url);
    if (options) return options;
  }
  // A password in the URL stays out of the message (it is logged and shown by the CLI).
  const shown = url.slice(0, 100).replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*):[^@/]*@/i, "$1:***@");
  throw new OrmqConfigurationError(`no ormq dialect serves the database URL ${JSON.stringify(shown)}`);
}

/** The file a DataSource's database lives in (an embedded database), or null. */
export function databaseFileOf(options: DataSourceOptions): string | null {
  return ALL_CONTRACTS.find((c) => c.connection.drivers.includes(options.type))?.connection.databaseFile(options) ?? null;
}

/** ormq's tables, escaped (and schema-qualified when the entities name a schema) for raw SQL. */
export function tablesOf(dataSource: DataSource): Tables {
  const escaped = (entity: typeof BaseTaskEntity | typeof WorkerEntity | typeof TaskEventEntity | typeof ControlEntity | typeof MetaEntity | typeof RateClaimEntity | typeof TaskDependencyEntity) => {
    const metadata = dataSource.getMetadata(entity);
    return [metadata.schema, metadata.tableName]
      .filter((part): part is string => !!part)
      .map((part) => dataSource.driver.escape(part))
      .join(".");
  };
  return {
    tasks: escaped(BaseTaskEntity),
    workers: escaped(WorkerEntity),
    events: escaped(TaskEventEntity),
    controls: escaped(ControlEntity),
    meta: escaped(MetaEntity),
    rateClaims: escaped(RateClaimEntity),
    dependencies: escaped(TaskDependencyEntity),
  };
}

/**
 * Opens the worker-side dialect for a DataSource. `slowConnectionMs`: a wait for a pooled
 * connection longer than this is logged (the worker passes its lease).
 */
export function createDialect(dataSource: DataSource, workerId: string, logger: Logger, options: Partial<DialectOptions> = {}): Dialect {
  return contractOf(dataSource).worker(dataSource, tablesOf(dataSource), workerId, logger, {
    slowConnectionMs: options.slowConnectionMs ?? 30_000,
    pooler: options.pooler ?? "none",
    listenUrl: options.listenUrl ?? null,
    // The worker passes its client's tag; a dialect made for one admin call gets a tag of its own.
    origin: options.origin ?? newOrigin(),
    onTransientRetry: options.onTransientRetry,
  });
}

/**
 * Announces committed new tasks to other processes where the dialect does (a PostgreSQL NOTIFY),
 * tagged with the DataSource's `origin`.
 */
export async function announceNewTasks(dataSource: DataSource, announcements: readonly string[], origin: string): Promise<void> {
  const notify = contractOf(dataSource).enqueue.notify;
  if (!notify) return;
  await notify((sql, params) => dataSource.query(sql, params), announcements, origin);
}
