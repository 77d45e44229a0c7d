import type { QueryRunner } from "typeorm";
import { dialectOf } from "./index";

/**
 * Bind-parameter limits per statement: SQLite's SQLITE_MAX_VARIABLE_NUMBER (32,766 since 3.32)
 * and PostgreSQL's protocol limit (65,535). A multi-row INSERT is cut into statements that stay
 * under them.
 */
const MAX_PARAMETERS = { sqlite: 32_766, postgres: 65_535 } as const;
/** Larger statements buy nothing measurable and make one round trip hold locks longer. */
const MAX_ROWS_PER_STATEMENT = 2_000;

/** A data-modifying statement over the rows just inserted: see bulkInsert. */
export interface AlsoWith {
  /** SQL that reads the CTE `inserted`. */
  sql: string;
  /** The columns of `inserted` it reads (only these are kept for it). */
  reads: readonly string[];
}

/** What bulkInsert returns. */
export interface BulkInserted {
  /** The value of `returning` for each row, in the order given. */
  returned: unknown[];
  /** Whether `alsoWith` ran (in the same statements as the rows' INSERT). */
  alsoWithDone: boolean;
}

/**
 * Inserts `rows` (values in `columns` order, already converted for the driver) into `table` with
 * multi-row INSERTs on `runner`, and returns the value of `returning` for each row, in order.
 *
 * `alsoWith`, on PostgreSQL: a data-modifying statement over the rows just inserted (a CTE that
 * reads the columns it names of `inserted`), run in the same statement: one round trip, and the
 * inserted rows need not travel back to be written again. Where it cannot be (SQLite, the VALUES
 * fallback), `alsoWithDone` is false and the caller does that write itself.
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
  alsoWith?: AlsoWith,
): Promise<BulkInserted> {
  if (rows.length === 0) return { returned: [], alsoWithDone: true };
  const dialect = dialectOf(runner.connection);
  if (dialect === "postgres") {
    const types = await columnTypes(runner, table);
    // One array per column, unnested: a statement of fixed size, parsed and planned once however
    // many rows it carries, where a VALUES list of thousands of rows costs more to parse and plan
    // than to insert. An array-typed column would be flattened by unnest: VALUES then.
    if (columns.every((c) => types.get(c) !== undefined && !types.get(c)!.endsWith("]"))) {
      return { returned: await unnestInsert(runner, table, columns, rows, returning, types, alsoWith), alsoWithDone: true };
    }
  }
  const escape = (name: string) => runner.connection.driver.escape(name);
  const perStatement = Math.max(1, Math.min(MAX_ROWS_PER_STATEMENT, Math.floor(MAX_PARAMETERS[dialect] / columns.length)));
  const head = `INSERT INTO ${table} (${columns.map(escape).join(", ")}) VALUES `;
  const tail = returning ? ` RETURNING ${escape(returning)}` : "";
  const out: unknown[] = [];
  for (let start = 0; start < rows.length; start += perStatement) {
    const chunk = rows.slice(start, start + perStatement);
    const params: unknown[] = [];
    const tuples: string[] = [];
    for (const row of chunk) {
      const marks: string[] = [];
      for (const value of row) {
        params.push(value);
        // PostgreSQL numbers its parameters; SQLite takes `?` in order.
        marks.push(dialect === "postgres" ? `$${params.length}` : "?");
      }
      tuples.push(`(${marks.join(", ")})`);
    }
    const result: unknown = await runner.query(head + tuples.join(", ") + tail, params);
    if (!returning) continue;
    const returned = (Array.isArray(result) ? result : []) as Record<string, unknown>[];
    if (returned.length !== chunk.length) throw new Error(`bulk insert into ${table}: ${returned.length} rows returned for ${chunk.length} inserted`);
    for (const r of returned) out.push(r[returning]);
  }
  return { returned: out, alsoWithDone: false };
}

/** Rows per unnest statement: large, but each array stays well below PostgreSQL's 1 GB value limit. */
const MAX_ROWS_PER_UNNEST = 10_000;

async function unnestInsert(
  runner: QueryRunner,
  table: string,
  columns: readonly string[],
  rows: readonly unknown[][],
  returning: string | null,
  types: Map<string, string>,
  alsoWith: AlsoWith | undefined,
): Promise<unknown[]> {
  const escape = (name: string) => runner.connection.driver.escape(name);
  const out: unknown[] = [];
  for (let start = 0; start < rows.length; start += MAX_ROWS_PER_UNNEST) {
    const chunk = rows.slice(start, start + MAX_ROWS_PER_UNNEST);
    // A column with one value in every row (a class's defaults, the enqueue time, the many nulls
    // of a new task) is sent once, not as an array: most of a task's columns are such, and an
    // array costs a text element per row to build here and to parse on the server.
    const params: unknown[] = [];
    const arrays: string[] = [];
    const values = columns.map((c, i) => {
      const type = types.get(c);
      const first = chunk[0][i];
      if (chunk.every((row) => row[i] === first)) return `$${params.push(first)}::${type}`;
      arrays.push(`$${params.push(chunk.map((row) => row[i]))}::${type}[]`);
      return `u.c${arrays.length}`;
    });
    // With no array left, the rows come from a series of the right length.
    const source = arrays.length > 0
      ? `unnest(${arrays.join(", ")}) AS u(${arrays.map((_, i) => `c${i + 1}`).join(", ")})`
      : `generate_series(1, $${params.push(chunk.length)}::int)`;
    const insert = `INSERT INTO ${table} (${columns.map(escape).join(", ")}) SELECT ${values.join(", ")} FROM ${source}`;
    // `inserted` keeps only what is read of it. RETURNING * kept every column of every row: with it
    // an enqueueMany of 10,000 with history took about 14 µs of server CPU per task, 12 without.
    const kept = [...new Set([...(returning ? [returning] : []), ...(alsoWith?.reads ?? [])])].map(escape).join(", ");
    const sql = alsoWith
      ? `WITH inserted AS (${insert} RETURNING ${kept}), also AS (${alsoWith.sql}) SELECT ${returning ? escape(returning) : "NULL"} FROM inserted`
      : insert + (returning ? ` RETURNING ${escape(returning)}` : "");
    const result: unknown = await runner.query(sql, params);
    if (!returning) continue;
    const returned = (Array.isArray(result) ? result : []) as Record<string, unknown>[];
    if (returned.length !== chunk.length) throw new Error(`bulk insert into ${table}: ${returned.length} rows returned for ${chunk.length} inserted`);
    for (const r of returned) out.push(r[returning]);
  }
  return out;
}

const typeCache = new WeakMap<object, Map<string, Map<string, string>>>();

/** The SQL type of each column of `table` (PostgreSQL), read once per DataSource and table. */
async function columnTypes(runner: QueryRunner, table: string): Promise<Map<string, string>> {
  let byTable = typeCache.get(runner.connection);
  if (!byTable) typeCache.set(runner.connection, (byTable = new Map()));
  let types = byTable.get(table);
  if (!types) {
    const rows = (await runner.query(
      // Without the type modifier: an explicit cast to varchar(255) would truncate a longer value
      // silently, where inserting it into the column refuses it, as the VALUES path does.
      `SELECT attname AS name, format_type(atttypid, NULL) AS type FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`,
      [table],
    )) as { name: string; type: string }[];
    types = new Map(rows.map((r) => [r.name, r.type]));
    byTable.set(table, types);
  }
  return types;
}
