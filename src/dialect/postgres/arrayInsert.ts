import type { QueryRunner } from "typeorm";
import { OrmqError } from "../../errors";
import type { BulkInsertOptions } from "../contract";

/** Rows per unnest statement: large, but each array stays well below PostgreSQL's 1 GB value limit. */
const MAX_ROWS_PER_UNNEST = 10_000;

/**
 * Inserts rows from one array per column, unnested: a statement of fixed size, parsed and planned
 * once however many rows it carries, where a VALUES list of thousands of rows costs more to parse
 * and plan than to insert. Returns null (the caller uses VALUES) when a column is array-typed,
 * which unnest would flatten, or unknown. See bulkInsert for the arguments.
 */
export async function arrayInsert(
  runner: QueryRunner,
  table: string,
  columns: readonly string[],
  rows: readonly unknown[][],
  returning: string | null,
  options: BulkInsertOptions = {},
): Promise<unknown[] | null> {
  const types = await columnTypes(runner, table);
  if (!columns.every((c) => types.get(c) !== undefined && !types.get(c)!.endsWith("]"))) return null;
  return unnestInsert(runner, table, columns, rows, returning, types, options);
}

async function unnestInsert(
  runner: QueryRunner,
  table: string,
  columns: readonly string[],
  rows: readonly unknown[][],
  returning: string | null,
  types: Map<string, string>,
  options: BulkInsertOptions,
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
    const sql = insert + (returning ? ` RETURNING ${escape(returning)}` : "");
    const result: unknown = await runner.query(sql, params);
    if (!returning) continue;
    const returned = (Array.isArray(result) ? result : []) as Record<string, unknown>[];
    if (returned.length !== chunk.length && !options.maySkip) throw new OrmqError(`bulk insert into ${table}: ${returned.length} rows returned for ${chunk.length} inserted`);
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
