import type { TaskRow } from "./dialect";

/**
 * Claim order: highest priority first, then earliest due time, then insertion order (id). The
 * claim reads the index in this order, but neither database promises that `RETURNING` reports
 * rows in it: PostgreSQL sorts them in the claim statement, SQLite with this function, so a worker
 * starts them in this order.
 */
export function compareClaimOrder(a: TaskRow, b: TaskRow): number {
  return Number(b.priority) - Number(a.priority) || compareBig(a.run_at, b.run_at) || compareBig(a.id, b.id);
}

/**
 * Compares 64-bit integers that come back as strings (node-postgres) or numbers (better-sqlite3).
 * A claim sorts up to a few hundred rows on every claim: values of 15 digits or fewer (every due
 * time, and ids below 10^15) compare as numbers, exactly and without a BigInt per comparison.
 */
export function compareBig(a: unknown, b: unknown): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "string" && typeof b === "string" && a.length <= 15 && b.length <= 15) return Number(a) - Number(b);
  const x = BigInt(String(a));
  const y = BigInt(String(b));
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Columns every claim returns whatever it is asked for: its CTEs, its order and the worker read them. */
const CLAIM_COLUMNS = ["id", "type", "queue", "priority", "run_at", "attempts", "status"];

/** A claim's RETURNING list: the columns asked for (and those it needs), or every column. */
export function returningColumns(columns: readonly string[] | undefined, column: (name: string) => string, all: string): string {
  if (!columns) return all;
  return [...new Set([...CLAIM_COLUMNS, ...columns])].map(column).join(", ");
}
