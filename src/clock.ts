import type { DataSource, QueryRunner } from "typeorm";
import { dialectOf } from "./dialect";

/**
 * The database's clock, as seen from this process. Due times and leases are compared with the
 * database's clock, so an enqueue computes `runAt` (now, or now plus a delay) on it too: an
 * application host whose clock runs ahead would otherwise make its tasks late by that much.
 *
 * The offset between this host's clock and the database's is measured with one query and kept
 * for a minute. SQLite is embedded: its clock is this host's.
 */
const REFRESH_MS = 60_000;

interface Offset {
  offsetMs: number;
  measuredAt: number;
}
const offsets = new WeakMap<DataSource, Offset | Promise<Offset>>();

/** The database's current time in epoch ms (this host's clock corrected by the measured offset). */
export async function databaseNow(dataSource: DataSource, runner?: QueryRunner): Promise<number> {
  if (dialectOf(dataSource) === "sqlite") return Date.now();
  let known = offsets.get(dataSource);
  if (!known || (!(known instanceof Promise) && Date.now() - known.measuredAt > REFRESH_MS)) {
    // The runner of the caller's transaction, when there is one: a pool of one connection would
    // otherwise wait for itself.
    const measuring = measure(dataSource, runner);
    offsets.set(dataSource, measuring);
    measuring.then(
      (offset) => offsets.set(dataSource, offset),
      () => offsets.delete(dataSource),
    );
    known = measuring;
  }
  const { offsetMs } = await known;
  return Date.now() + offsetMs;
}

async function measure(dataSource: DataSource, runner?: QueryRunner): Promise<Offset> {
  const sql = `SELECT (floor(extract(epoch from clock_timestamp()) * 1000))::bigint AS now`;
  const before = Date.now();
  const rows: { now: string }[] = runner ? await runner.query(sql) : await dataSource.query(sql);
  const after = Date.now();
  return { offsetMs: Number(rows[0].now) - Math.round((before + after) / 2), measuredAt: after };
}
