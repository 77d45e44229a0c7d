/**
 * Inserting new tasks where the server has no `INSERT … RETURNING` (MySQL 8; MariaDB has had it
 * since 10.5 and ormq uses it there): the generated ids come from the statement's first insert id.
 *
 * A multi-row INSERT of a VALUES list is a "simple insert" to InnoDB: it reserves the rows' ids at
 * once, so they are consecutive (spaced by `auto_increment_increment`) under
 * `innodb_autoinc_lock_mode` 0 or 1. At 2 (MySQL 8's default) the manual promises them unique and
 * increasing but not consecutive when statements run at once, so there, and where rows may be
 * skipped by the unique guard, rows go one INSERT each, each with its own insert id: slower
 * (a round trip a row), never a wrong id.
 */
import type { DataSource, QueryRunner } from "typeorm";
import { OrmqError } from "../../errors";
import type { BulkInsertOptions } from "../contract";
import { rowsPerStatement } from "../statementSize";
import { guardSkippedInsert } from "./guardDuplicates";
import { mysqlSql } from "./sql";


interface IdAllocation {
  /** Whether a multi-row INSERT's ids are consecutive (lock mode 0 or 1). */
  consecutive: boolean;
  /** auto_increment_increment: the step between them. */
  step: bigint;
}

const allocations = new WeakMap<DataSource, Promise<IdAllocation>>();

/** Whether this server returns rows from an INSERT: MariaDB (10.5+; MySQL's versions are below 10). */
export function serverHasInsertReturning(dataSource: DataSource): boolean {
  const version = String((dataSource.driver as { version?: unknown }).version ?? "");
  const major = Number(/^(\d+)\./.exec(version)?.[1]);
  return Number.isFinite(major) && major >= 10;
}

export async function insertWithoutReturning(
  runner: QueryRunner,
  table: string,
  columns: readonly string[],
  rows: readonly unknown[][],
  options: BulkInsertOptions,
): Promise<unknown[] | null> {
  if (serverHasInsertReturning(runner.connection)) return null;
  const allocation = await allocationOf(runner);
  const head = `INSERT INTO ${table} (${columns.join(", ")}) VALUES `;
  const row = `(${columns.map(() => "?").join(", ")})`;
  const ids: string[] = [];
  if (!allocation.consecutive || options.maySkip) {
    for (const values of rows) {
      // A duplicate refused by the unique guard is answered as nothing written (guardDuplicates.ts);
      // asking forgets it, so that a later insert on this runner is not taken for a skipped one.
      const result = header(await runner.query(head + row, [...values]));
      const skipped = await guardSkippedInsert(runner);
      if (result.affectedRows === 1 && !skipped) ids.push(String(result.insertId));
      else if (!options.maySkip) throw new OrmqError(`bulk insert into ${table}: ${result.affectedRows} rows written for 1`);
    }
    return ids;
  }
  const perStatement = rowsPerStatement(mysqlSql.maxParameters, columns.length);
  for (let start = 0; start < rows.length; start += perStatement) {
    const chunk = rows.slice(start, start + perStatement);
    const params: unknown[] = [];
    for (const values of chunk) for (const value of values) params.push(value);
    const result = header(await runner.query(head + Array<string>(chunk.length).fill(row).join(", "), params));
    if (result.affectedRows !== chunk.length) throw new OrmqError(`bulk insert into ${table}: ${result.affectedRows} rows written for ${chunk.length}`);
    const first = BigInt(String(result.insertId));
    for (let i = 0; i < chunk.length; i++) ids.push(String(first + BigInt(i) * allocation.step));
  }
  return ids;
}

/** The server's id allocation, read once per DataSource. */
function allocationOf(runner: QueryRunner): Promise<IdAllocation> {
  let allocation = allocations.get(runner.connection);
  if (!allocation) {
    allocation = runner.query(`SELECT @@innodb_autoinc_lock_mode AS mode, @@auto_increment_increment AS step`).then((rows: { mode: unknown; step: unknown }[]) => ({
      consecutive: Number(rows[0]?.mode) <= 1,
      step: BigInt(String(rows[0]?.step ?? 1)),
    }));
    allocations.set(runner.connection, allocation);
    allocation.catch(() => allocations.delete(runner.connection));
  }
  return allocation;
}

/** An INSERT's result header (mysql2's ResultSetHeader, as TypeORM's query hands it over). */
function header(result: unknown): { affectedRows: number; insertId: unknown } {
  const r = result as { affectedRows?: unknown; insertId?: unknown } | null;
  return { affectedRows: Number(r?.affectedRows ?? 0), insertId: r?.insertId ?? 0 };
}
