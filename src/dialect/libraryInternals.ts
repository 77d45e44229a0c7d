/**
 * Everything ormq relies on inside TypeORM (1.1.x), and inside node-postgres's pool, that is not
 * their public API: each in one function here, each with a test of its own in
 * tests/libraryInternals.test.ts, so that an upgrade that changes one fails there, by name, before
 * anything else. No other module touches these (`npm run lint` refuses `.master`,
 * `transactionDepth`, `_clients` and `getInsertionReturningColumns` anywhere else).
 */
import type { Pool, PoolClient } from "pg";
import { QueryResult, type DataSource, type QueryRunner } from "typeorm";
import { MysqlQueryRunner } from "typeorm/driver/mysql/MysqlQueryRunner";
import { AbstractSqliteDriver } from "typeorm/driver/sqlite-abstract/AbstractSqliteDriver";
import { BetterSqlite3Driver } from "typeorm/driver/better-sqlite3/BetterSqlite3Driver";
import { ApplyValueTransformers } from "typeorm/util/ApplyValueTransformers";
import type { ColumnMetadata } from "typeorm/metadata/ColumnMetadata";
import type { EntityMetadata } from "typeorm/metadata/EntityMetadata";

/** The pg Pool behind a PostgreSQL DataSource (TypeORM's `driver.master`); undefined before it connects. */
export function poolOf(dataSource: DataSource): Pool | undefined {
  return (dataSource.driver as unknown as { master?: Pool }).master;
}

/** The clients a pg Pool has open already (pg-pool's private `_clients`): empty when it has none. */
export function openClientsOf(pool: Pool): readonly PoolClient[] {
  return (pool as unknown as { _clients?: PoolClient[] })._clients ?? [];
}

/** The statement TypeORM's SQLite query runners send to begin a transaction (ormq makes it IMMEDIATE). */
export const SQLITE_BEGIN = "BEGIN TRANSACTION";

/**
 * How deep a query runner's transactions are nested (TypeORM keeps it in a field): 1 in the
 * outermost transaction, more inside savepoints. TypeORM broadcasts BeforeTransactionCommit for
 * a savepoint's release too, and only the outermost commit is one.
 */
export function transactionDepthOf(runner: QueryRunner): number {
  const depth = (runner as unknown as { transactionDepth?: unknown }).transactionDepth;
  return typeof depth === "number" ? depth : 0;
}

/**
 * Resets a query runner's transaction depth (TypeORM keeps it in a field): after a BEGIN that
 * failed, TypeORM has counted a transaction that never began.
 */
export function resetTransactionDepth(runner: QueryRunner): void {
  (runner as unknown as { transactionDepth: number }).transactionDepth = 0;
}

/**
 * Replaces how the SQLite drivers name a column's type in DDL (`AbstractSqliteDriver.prototype.
 * normalizeType`): `wrap` receives the column and TypeORM's own answer. Once per process.
 */
export function patchSqliteColumnTypes(marker: symbol, wrap: (column: SqliteColumn, original: () => string) => string): void {
  const proto = AbstractSqliteDriver.prototype as unknown as Record<PropertyKey, unknown> & { normalizeType(column: SqliteColumn): string };
  if (proto[marker]) return;
  const original = proto.normalizeType;
  proto.normalizeType = function (this: unknown, column: SqliteColumn) {
    return wrap(column, () => original.call(this, column));
  };
  proto[marker] = true;
}

/**
 * Calls `made` with the better-sqlite3 driver's query runner when the driver makes it
 * (`BetterSqlite3Driver.prototype.createQueryRunner` keeps one runner per DataSource, made on
 * first use, after the DataSource's metadata is built). Once per process.
 */
export function onSqliteRunnerMade(marker: symbol, made: (runner: QueryRunner, dataSource: DataSource) => void): void {
  const proto = BetterSqlite3Driver.prototype as unknown as Record<PropertyKey, unknown> & {
    createQueryRunner(this: { queryRunner?: QueryRunner; dataSource: DataSource }, mode: unknown): QueryRunner;
  };
  if (proto[marker]) return;
  const original = proto.createQueryRunner;
  proto.createQueryRunner = function (mode) {
    const before = this.queryRunner;
    const runner = original.call(this, mode);
    if (runner !== before) made(runner, this.dataSource);
    return runner;
  };
  proto[marker] = true;
}

/** What normalizeType is given of a column. */
export interface SqliteColumn {
  type?: unknown;
  isPrimary?: boolean;
  isGenerated?: boolean;
  generationStrategy?: string;
}

/**
 * Narrows the columns TypeORM reads back after an INSERT on a driver without RETURNING
 * (`EntityMetadata.getInsertionReturningColumns`, which ReturningResultsEntityUpdator calls).
 */
export function narrowInsertReread(metadata: EntityMetadata, keep: (column: ColumnMetadata) => boolean): void {
  const all = metadata.getInsertionReturningColumns.bind(metadata);
  metadata.getInsertionReturningColumns = () => all().filter(keep);
}

/**
 * A value as a column's transformer(s) write it (TypeORM's `ApplyValueTransformers.transformTo`,
 * not exported from its root): what a unique key is built from (see flow/keyValue.ts).
 */
export function transformTo(transformer: ColumnMetadata["transformer"], value: unknown): unknown {
  return transformer ? ApplyValueTransformers.transformTo(transformer, value) : value;
}

/**
 * Wraps TypeORM's MySQL query runner's `query` (`MysqlQueryRunner.prototype.query`, which every
 * statement of a MySQL or MariaDB DataSource goes through, the persistence of `save()` included)
 * so that `onError` may answer for a statement that failed: the result in place of the error, or
 * undefined to let the error through. `structured`: TypeORM asked for a QueryResult (`raw`,
 * `records`, `affected`) rather than the raw result. Once per process.
 */
export function patchMysqlQueryErrors(
  marker: symbol,
  onError: (err: unknown, sql: string, runner: QueryRunner) => { raw: unknown; records: unknown[]; affected: number } | undefined,
): void {
  const proto = MysqlQueryRunner.prototype as unknown as Record<PropertyKey, unknown> & {
    query(this: QueryRunner, sql: string, parameters?: unknown[], structured?: boolean): Promise<unknown>;
  };
  if (proto[marker]) return;
  const original = proto.query;
  proto.query = async function (this: QueryRunner, sql: string, parameters?: unknown[], structured?: boolean) {
    try {
      return await original.call(this, sql, parameters, structured);
    } catch (err) {
      const answer = onError(err, sql, this);
      if (!answer) throw err;
      return structured ? Object.assign(new QueryResult(), answer) : answer.raw;
    }
  };
  proto[marker] = true;
}
