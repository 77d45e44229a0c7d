/**
 * Index statements in the form PostgreSQL and SQLite share (partial indexes, names unique in the
 * schema). A database that writes them otherwise gives its own in its contract's `schema`.
 */
import type { IndexSpec } from "./contract";

/** A double-quoted identifier, as PostgreSQL and SQLite both write one (their sql.ts use it too). */
export const quoteIdentifier = (name: string) => `"${name.replace(/"/g, '""')}"`;
const escape = quoteIdentifier;

/** CREATE INDEX, partial where asked; each column optionally followed by ` DESC`. */
export function createIndexSql(index: IndexSpec): string {
  const columns = index.columns.map((c) => c.replace(/^(\S+)/, (name) => escape(name))).join(", ");
  const exists = index.ifNotExists ? "IF NOT EXISTS " : "";
  return `CREATE ${index.unique ? "UNIQUE " : ""}INDEX ${exists}${escape(index.name)} ON ${index.table} (${columns})${index.where ? ` WHERE ${index.where}` : ""}`;
}

/** DROP INDEX: index names are the schema's (not per table) on PostgreSQL and SQLite. */
export function dropIndexSql(index: Pick<IndexSpec, "name">): string {
  return `DROP INDEX ${escape(index.name)}`;
}
