import type { DataSource, DataSourceOptions } from "typeorm";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { TaskEventEntity } from "../../entities/TaskEventEntity";
import { WorkerEntity } from "../../entities/WorkerEntity";
import { ControlEntity, MetaEntity, RateClaimEntity } from "../../entities/ControlEntity";
import { OrmqConfigurationError } from "../errors";
import type { Logger } from "../logger";
import type { Dialect, Tables } from "./dialect";
import { newOrigin } from "./origin";
import { postgresTraits } from "./postgres/traits";
import { sqliteTraits } from "./sqlite/traits";
import type { DialectOptions, DialectTraits } from "./traits";

export type { ClaimLimits, ClaimRequest, Completion, Controls, Dialect, FinalStatus, Renewal, RescuedTask, TaskFilter, TaskRow, WakeHandler, WorkerInfo } from "./dialect";
export { outsideTransactions } from "./sqlite/connectionGuard";
/** SQLite's 64-bit generated key in TypeORM's DDL (see sqlite/integerKey.ts): installed once per process. */
export { installSqliteIntegerKey } from "./sqlite/integerKey";
export type { DialectTraits, Query } from "./traits";
export { writeFailureOf, type WriteFailure, type WriteFailureKind } from "./writeFailure";

/** Every dialect, in the order a database URL is offered to them (the last takes any URL). */
const ALL_TRAITS: readonly DialectTraits[] = [postgresTraits, sqliteTraits];

/**
 * The one place that decides which dialect serves a DataSource: its traits (capabilities, and the
 * worker-side dialect it opens). Any other driver is a clear error.
 */
export function traitsOf(dataSource: DataSource): DialectTraits {
  const type = dataSource.options.type;
  const traits = ALL_TRAITS.find((t) => t.driver === type);
  if (traits) return traits;
  throw new OrmqConfigurationError(`ormq supports the ${ALL_TRAITS.map((t) => `"${t.driver}"`).join(" and ")} drivers, not "${type}"`);
}

/** The DataSource options of a database URL: the first dialect that claims it. */
export function dataSourceOptionsForUrl(url: string): DataSourceOptions {
  for (const traits of ALL_TRAITS) {
    const options = traits.optionsForUrl(url);
    if (options) return options;
  }
  throw new OrmqConfigurationError(`no ormq dialect serves the database URL ${JSON.stringify(url.slice(0, 100))}`);
}

/** The file a DataSource's database lives in (an embedded database), or null. */
export function databaseFileOf(options: DataSourceOptions): string | null {
  return ALL_TRAITS.find((t) => t.driver === options.type)?.databaseFile(options) ?? null;
}

/** ormq's tables, escaped (and schema-qualified when the entities name a schema) for raw SQL. */
export function tablesOf(dataSource: DataSource): Tables {
  const escaped = (entity: typeof BaseTaskEntity | typeof WorkerEntity | typeof TaskEventEntity | typeof ControlEntity | typeof MetaEntity | typeof RateClaimEntity) => {
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
  };
}

/**
 * Opens the worker-side dialect for a DataSource. `slowConnectionMs`: a wait for a pooled
 * connection longer than this is logged (the worker passes its lease).
 */
export function createDialect(dataSource: DataSource, workerId: string, logger: Logger, options: Partial<DialectOptions> = {}): Dialect {
  return traitsOf(dataSource).createDialect(dataSource, tablesOf(dataSource), workerId, logger, {
    slowConnectionMs: options.slowConnectionMs ?? 30_000,
    pooler: options.pooler ?? "none",
    listenUrl: options.listenUrl ?? null,
    // The worker passes its client's tag; a dialect made for one admin call gets a tag of its own.
    origin: options.origin ?? newOrigin(),
  });
}

/**
 * Announces committed new tasks to other processes where the dialect does (a PostgreSQL NOTIFY),
 * tagged with the DataSource's `origin`.
 */
export async function announceNewTasks(dataSource: DataSource, announcements: readonly string[], origin: string): Promise<void> {
  const notify = traitsOf(dataSource).notify;
  if (!notify) return;
  await notify((sql, params) => dataSource.query(sql, params), announcements, origin);
}

/**
 * Readies a DataSource for ormq, once: on SQLite, guards TypeORM's single connection so that
 * concurrent tasks' transactions and saves wait for each other instead of interleaving; on
 * PostgreSQL, keeps a connection the server ends from crashing the process.
 */
export function prepareDataSource(dataSource: DataSource): void {
  traitsOf(dataSource).prepare(dataSource);
}
