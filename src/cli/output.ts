/**
 * How commands print: a table for people (or `key: value` lines for one record), or JSON with
 * `--json` for scripts. Dates print as ISO strings either way.
 */
import Table from "cli-table3";

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, jsonValue, 2) + "\n");
}

function jsonValue(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

/** Prints rows as a table with the given columns (key → heading). */
export function printTable(rows: Record<string, unknown>[], columns: Record<string, string>): void {
  if (rows.length === 0) {
    process.stdout.write("(none)\n");
    return;
  }
  const table = new Table({ head: Object.values(columns), style: process.stdout.isTTY ? { head: ["cyan"] } : { head: [], border: [] } });
  for (const row of rows) table.push(Object.keys(columns).map((k) => cell(row[k])));
  process.stdout.write(table.toString() + "\n");
}

/** Prints one record as aligned `key  value` lines. */
export function printRecord(record: Record<string, unknown>): void {
  const width = Math.max(...Object.keys(record).map((k) => k.length));
  for (const [key, value] of Object.entries(record)) process.stdout.write(`${key.padEnd(width)}  ${cell(value)}\n`);
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}
