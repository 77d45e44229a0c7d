import type { QueryRunner } from "typeorm";
import { OrmqError } from "../errors";
import type { BulkInsertOptions, SqlSpelling } from "./contract";
import { contractOf } from "./index";
import { rowsPerStatement } from "./statementSize";



/**
 * Inserts `rows` (values in `columns` order, already converted for the driver) into `table` with
 * multi-row INSERTs on `runner`, and returns the value of `returning` for each row, in order.
 *
 * Order: both databases insert a VALUES list in the order written and RETURNING reports the rows in
 * that order (PostgreSQL for a plain VALUES list, SQLite for its row-at-a-time insert). The caller
 * checks that the generated ids increase, as they must if that holds.
 */
export async function bulkInsert(
  runner: QueryRunner,
  table: string,
  columns: readonly string[],
  rows: readonly unknown[][],
  returning: string | null,
  options: BulkInsertOptions = {},
): Promise<unknown[]> {
  if (rows.length === 0) return [];
  const contract = contractOf(runner.connection);
  const sql = contract.sql;
  if (contract.enqueue.arrayInsert) {
    // One array per column (PostgreSQL's unnest): see postgres/arrayInsert.ts. Null when this
    // table cannot be inserted that way; VALUES lists then.
    const returned = await contract.enqueue.arrayInsert(runner, table, columns, rows, returning, options);
    if (returned !== null) return returned;
  }
  const escape = (name: string) => runner.connection.driver.escape(name);
  if (returning && contract.enqueue.insertWithoutReturning) {
    // The generated ids where the server cannot return them (MySQL 8).
    const ids = await contract.enqueue.insertWithoutReturning(runner, table, columns.map(escape), rows, options);
    if (ids !== null) return ids;
  }
  if (options.maySkip && contract.enqueue.duplicateFails) {
    return insertEachSkippingDuplicates(runner, table, columns.map(escape), rows, returning && escape(returning), returning, contract.enqueue.insertSkipped);
  }
  // A multi-row INSERT is cut into statements that stay under the dialect's parameter limit.
  const perStatement = rowsPerStatement(sql.maxParameters, columns.length);
  const head = `INSERT INTO ${table} (${columns.map(escape).join(", ")}) VALUES `;
  const tail = returning ? ` RETURNING ${escape(returning)}` : "";
  const out: unknown[] = [];
  for (let start = 0; start < rows.length; start += perStatement) {
    const chunk = rows.slice(start, start + perStatement);
    const params: unknown[] = [];
    for (const row of chunk) for (const value of row) params.push(value);
    const result: unknown = await runner.query(head + valuesList(sql, chunk.length, columns.length) + tail, params);
    if (!returning) continue;
    const returned = (Array.isArray(result) ? result : []) as Record<string, unknown>[];
    if (returned.length !== chunk.length && !options.maySkip) throw new OrmqError(`bulk insert into ${table}: ${returned.length} rows returned for ${chunk.length} inserted`);
    for (const r of returned) out.push(r[returning]);
  }
  return out;
}

/**
 * Where the unique guard fails a duplicate's statement (MySQL: error 1062, which rolls back that
 * statement only, never the transaction) rather than writing nothing: one INSERT per row, and a
 * duplicate is a row skipped. The guard's refusal is answered as nothing written (see
 * mysql/guardDuplicates.ts); any other duplicate key (a constraint of the application's) fails
 * the insert. `insertSkipped` is asked after each row, which forgets the refusal, so that a later
 * insert on this runner is not taken for a skipped one. Only rows that may be skipped (unique
 * tasks, a schedule's tick) come this way.
 */
async function insertEachSkippingDuplicates(
  runner: QueryRunner,
  table: string,
  columns: readonly string[],
  rows: readonly unknown[][],
  returningColumn: string | null,
  returning: string | null,
  insertSkipped: ((runner: QueryRunner) => Promise<boolean>) | null,
): Promise<unknown[]> {
  const statement = `INSERT INTO ${table} (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})${returningColumn ? ` RETURNING ${returningColumn}` : ""}`;
  const out: unknown[] = [];
  for (const row of rows) {
    const result: unknown = await runner.query(statement, [...row]);
    const skipped = (await insertSkipped?.(runner)) ?? false;
    if (returning && !skipped) for (const r of (Array.isArray(result) ? result : []) as Record<string, unknown>[]) out.push(r[returning]);
  }
  return out;
}

/**
 * `(?, ?), (?, ?)…` for `rows` rows of `columns` values. Where every mark is the same (SQLite's
 * `?`), one row's text is repeated rather than built per row: SQLite's statements carry up to
 * 32,766 marks: building each one cost enqueueMany about 1 µs of its ~20 µs of CPU a task.
 */
function valuesList(sql: SqlSpelling, rows: number, columns: number): string {
  if (sql.parameter(1) === sql.parameter(2)) {
    return Array<string>(rows).fill(`(${Array<string>(columns).fill(sql.parameter(1)).join(", ")})`).join(", ");
  }
  const tuples: string[] = [];
  for (let r = 0; r < rows; r++) {
    const marks: string[] = [];
    for (let c = 1; c <= columns; c++) marks.push(sql.parameter(r * columns + c));
    tuples.push(`(${marks.join(", ")})`);
  }
  return tuples.join(", ");
}
