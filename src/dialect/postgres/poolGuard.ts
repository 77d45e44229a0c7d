/**
 * Keeps a dying PostgreSQL connection from crashing the process. When the server ends a
 * connection (a restart, an administrator's terminate), node-postgres can emit `error` on the
 * client more than once: the server's FATAL message, then the socket's end. TypeORM's query runner
 * (1.1.1) removes its error listener on the first and hands the client back to the pool to be
 * destroyed; the second then has no listener, and an `error` event without a listener is thrown
 * as an uncaught exception. Every pooled client therefore gets a listener that ignores errors:
 * the real handling (pg-pool for idle clients, TypeORM for checked-out ones, the failing query's
 * own rejection) is unchanged. The worker's statements borrow clients of the same pool, so they are
 * covered too (the worker readies its DataSource before it connects); its LISTEN connection, outside
 * the pool, has a listener of its own.
 */
import type { Pool } from "pg";
import type { DataSource } from "typeorm";
import { openClientsOf, poolOf } from "../libraryInternals";

const guarded = new WeakSet<Pool>();

/** True once the DataSource's pool is guarded; false when it has no pool yet (not initialized). */
export function guardPostgresPool(dataSource: DataSource): boolean {
  const pool = poolOf(dataSource);
  if (!pool) return false;
  if (guarded.has(pool)) return true;
  guarded.add(pool);
  pool.on("connect", (client) => client.on("error", ignoreError));
  // Clients opened before ormq saw this DataSource (pg-pool keeps them in a private list).
  for (const client of openClientsOf(pool)) client.on("error", ignoreError);
  return true;
}

function ignoreError(): void {}
