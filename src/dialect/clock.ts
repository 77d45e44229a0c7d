import type { DataSource, QueryRunner } from "typeorm";
import { contractOf } from "./index";

/**
 * The database's clock, as seen from this process. Due times and leases are compared with the
 * database's clock, so an enqueue computes `runAt` (now, or now plus a delay) on it too: an
 * application host whose clock runs ahead would otherwise make its tasks late by that much.
 *
 * The offset between this host's clock and the database's is measured with one query and kept
 * for a minute. A stale offset is still used while a fresh one is measured in the background, and
 * a caller never waits on a query running on someone else's connection (which, with a small pool
 * or another caller's aborted transaction, could block or fail it). An embedded database's clock
 * (SQLite) is this host's.
 */
const REFRESH_MS = 60_000;

interface Offset {
  offsetMs: number;
  measuredAt: number;
}

/** A DataSource's clock: held by its client (see src/client/client.ts), one per DataSource. */
export class DatabaseClock {
  private offset: Offset | undefined;
  private refreshing = false;
  /** A first measurement in flight on a connection: callers on that same connection share it. */
  private readonly firstMeasurements = new WeakMap<object, Promise<Offset>>();
  /** The database's query for its time in epoch ms; null: an embedded database, whose clock is this host's. */
  private readonly clockSql: string | null;

  constructor(private readonly dataSource: DataSource) {
    this.clockSql = contractOf(dataSource).clockSql;
  }

  /** The database's current time in epoch ms (this host's clock corrected by the measured offset). */
  async now(runner?: QueryRunner): Promise<number> {
    const clockSql = this.clockSql;
    if (clockSql === null) return Date.now(); // an embedded database: this host's clock is its clock
    let known = this.offset;
    if (!known) {
      // Nothing known yet: measure on the caller's own connection (its transaction's, if any). A
      // bulk save calls this for every row at once: one query per connection, shared.
      const key: object = runner ?? this.dataSource;
      let first = this.firstMeasurements.get(key);
      if (!first) {
        first = measure(this.dataSource, clockSql, runner).finally(() => this.firstMeasurements.delete(key));
        this.firstMeasurements.set(key, first);
      }
      known = await first;
      this.offset = known;
    } else if (Date.now() - known.measuredAt > REFRESH_MS && !this.refreshing) {
      this.refreshing = true;
      measure(this.dataSource, clockSql)
        .then((fresh) => (this.offset = fresh))
        .catch(() => {}) // keep the old offset; try again next time
        .finally(() => (this.refreshing = false));
    }
    return Date.now() + known.offsetMs;
  }

  /**
   * The database's time read now, with one query (this host's clock for an embedded database), and
   * kept as the offset from here on. For decisions that a stale offset must not make: a clock that
   * jumped while the offset was measured would otherwise be believed for up to a minute.
   */
  async fresh(): Promise<number> {
    if (this.clockSql === null) return Date.now();
    const fresh = await measure(this.dataSource, this.clockSql);
    this.offset = fresh;
    return Date.now() + fresh.offsetMs;
  }
}

async function measure(dataSource: DataSource, sql: string, runner?: QueryRunner): Promise<Offset> {
  const before = Date.now();
  const rows: { now: string }[] = runner ? await runner.query(sql) : await dataSource.query(sql);
  const after = Date.now();
  return { offsetMs: Number(rows[0].now) - Math.round((before + after) / 2), measuredAt: after };
}
