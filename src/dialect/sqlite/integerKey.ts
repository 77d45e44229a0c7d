import { patchSqliteColumnTypes } from "../libraryInternals";

/**
 * ormq_tasks.id is `bigint` so that PostgreSQL stores 64-bit ids. SQLite allows AUTOINCREMENT
 * only on a column typed exactly INTEGER PRIMARY KEY (which is 64-bit there), and TypeORM writes
 * `bigint PRIMARY KEY AUTOINCREMENT`, which SQLite rejects, so synchronize and migration:generate
 * would fail on any SQLite database. This maps a generated increment `bigint` primary key to
 * `integer` on the SQLite drivers: it only changes DDL that SQLite would refuse, and it makes the
 * schema TypeORM computes match what ormq's migration creates.
 */
const PATCHED = Symbol.for("ormq.sqliteIntegerKey");

/**
 * Installs the mapping once per process (idempotent). Called by `ormqDataSourceOptions` and when a
 * DataSource with ormq's subscriber is built (`src/setup.ts`), not as a side effect of an import.
 */
export function installSqliteIntegerKey(): void {
  patchSqliteColumnTypes(PATCHED, (column, original) =>
    column.type === "bigint" && column.isPrimary && column.isGenerated && column.generationStrategy === "increment" ? "integer" : original(),
  );
}
