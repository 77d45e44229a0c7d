/**
 * What the benchmark scenarios share: the no-op task classes, fresh databases (a SQLite file, or a
 * new database on the benchmark PostgreSQL), and the shape of one result line.
 */
import "reflect-metadata";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "pg";
import { ChildEntity, Column, DataSource, Entity, PrimaryGeneratedColumn, type DataSourceOptions } from "typeorm";
import { BaseTaskEntity, enqueueMany, ormqDataSourceOptions } from "../src";

export type DatabaseName = "sqlite" | "postgres" | "mariadb";

/** A no-op task whose transitions are recorded in the history table. */
@ChildEntity("bench_noop")
export class Noop extends BaseTaskEntity {
  async run() {}
}

/** The same without history (`static history = false`). */
@ChildEntity("bench_noop_quiet")
export class QuietNoop extends BaseTaskEntity {
  static history = false;
  async run() {}
}

/** No history, and its row is deleted when it succeeds (`static keepSucceeded = false`). */
@ChildEntity("bench_noop_lean")
export class LeanNoop extends BaseTaskEntity {
  static history = false;
  static keepSucceeded = false;
  async run() {}
}

/** No history, at most 2 running per key (`static concurrencyLimit`), across all workers. */
@ChildEntity("bench_noop_limited")
export class LimitedNoop extends BaseTaskEntity {
  static history = false;
  static concurrencyLimit = { max: 2, by: "benchKey" };
  @Column({ type: "varchar", length: 64, nullable: true })
  benchKey!: string | null;
  async run() {}
}

/** No history, at most 5,000 claimed a second across all workers (`static rateLimit`). */
@ChildEntity("bench_noop_rated")
export class RatedNoop extends BaseTaskEntity {
  static history = false;
  static rateLimit = { max: 5_000, perMs: 1_000 };
  async run() {}
}

/** No history, one unfinished task per key (`static unique`). */
@ChildEntity("bench_noop_unique")
export class UniqueNoop extends BaseTaskEntity {
  static history = false;
  static unique = { by: ["benchKey"] };
  @Column({ type: "varchar", length: 64, nullable: true })
  benchKey!: string | null;
  async run() {}
}

/** A row the application writes in the same transaction as an enqueue. */
@Entity("bench_orders")
export class Order {
  @PrimaryGeneratedColumn()
  id!: number;
  @Column({ type: "varchar", length: 64 })
  note!: string;
}

/** One scenario's figures: printed as one JSON line and gathered for the table and RESULTS.md. */
export interface Result {
  scenario: string;
  database: DatabaseName | "postgres (graphile-worker)" | "postgres (pg-boss)" | "sqlite (plainjob)";
  /** What was measured, in words (concurrency, history, …). */
  variant: string;
  tasks: number;
  tasksPerSecond?: number;
  p50?: number;
  p95?: number;
  p99?: number;
  max?: number;
  rssMb?: number;
  /** Share of the PL/pgSQL ceiling measured in the same run. */
  ofCeiling?: number;
  /** CPU time per task of the worker's process, in µs (drains). */
  workerCpuUs?: number;
  /** CPU time per task of the database server's processes on this host (PostgreSQL or MariaDB), in µs (drains). */
  serverCpuUs?: number;
  /** Transactions the database refused as deadlocks or lock wait timeouts, run again. */
  transientRetries?: number;
  /** Attempts that failed or were retried (where none should). */
  failedAttempts?: number;
}

/** Where fresh databases come from in one run; `dropAll()` removes the server ones. */
export class Databases {
  private n = 0;
  private readonly created: string[] = [];
  private readonly createdOnMariaDb: string[] = [];
  constructor(
    readonly dir: string,
    readonly pgUrl: string,
    /** The benchmark's MariaDB (`mariadb://root@host:port/`), when it runs one. */
    readonly mariadbUrl = "",
  ) {}

  /**
   * A URL (or SQLite path) of a new, empty database. Scenarios use one at a time, so a new
   * PostgreSQL database replaces the earlier ones: a drained database left behind is vacuumed by
   * autovacuum while the next scenario runs, which then pays for it (drains of the same code
   * varied by half, and the server CPU per task by four times, before this).
   */
  async fresh(database: DatabaseName): Promise<string> {
    this.n++;
    // The process id in the name: head-to-head drains make theirs in processes of their own.
    if (database === "sqlite") return join(this.dir, `bench-${process.pid}-${this.n}.sqlite`);
    await this.dropAll();
    if (database === "mariadb") {
      const name = `bench_${process.pid}_${this.n}`;
      await onMariaDb(this.mariadbUrl, `CREATE DATABASE ${name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
      this.createdOnMariaDb.push(name);
      const url = new URL(this.mariadbUrl);
      url.pathname = `/${name}`;
      return url.toString();
    }
    const name = `bench_${process.pid}_${this.n}`;
    await withClient(this.pgUrl, (c) => c.query(`CREATE DATABASE ${name}`));
    this.created.push(name);
    const url = new URL(this.pgUrl);
    url.pathname = `/${name}`;
    return url.toString();
  }

  async dropAll(): Promise<void> {
    if (this.created.length > 0) {
      await withClient(this.pgUrl, async (c) => {
        for (const name of this.created.splice(0)) await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      });
    }
    for (const name of this.createdOnMariaDb.splice(0)) await onMariaDb(this.mariadbUrl, `DROP DATABASE IF EXISTS ${name}`);
  }
}

/** One statement on the benchmark's MariaDB (mysql2 is loaded only when MariaDB is measured). */
async function onMariaDb(url: string, sql: string): Promise<void> {
  const { createConnection } = await import("mysql2/promise");
  const c = await createConnection(url);
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** What a scenario adds to the benchmark's DataSource. */
export interface OpenOptions {
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  entities?: Function[];
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  subscribers?: Function[];
  /** Default true; false for a second DataSource on a database already set up. */
  migrationsRun?: boolean;
  /** TypeORM's logger, and the time past which it reports a query as slow. */
  logger?: DataSourceOptions["logger"];
  maxQueryExecutionTime?: number;
}

/** Opens a DataSource with ormq's schema and the benchmark's entities. */
export async function open(url: string, options: OpenOptions = {}): Promise<DataSource> {
  const base = ormqDataSourceOptions(url);
  const ds = new DataSource({
    ...base,
    entities: [...(base.entities as []), Noop, QuietNoop, LeanNoop, LimitedNoop, RatedNoop, UniqueNoop, Order, ...(options.entities ?? [])],
    subscribers: [...(base.subscribers as []), ...(options.subscribers ?? [])],
    migrationsRun: options.migrationsRun ?? true,
    logging: false,
    ...(options.logger ? { logger: options.logger, maxQueryExecutionTime: options.maxQueryExecutionTime } : {}),
  } as DataSourceOptions);
  await ds.initialize();
  if (options.migrationsRun !== false) await ds.synchronize();
  return ds;
}

export async function withClient<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Enqueues `count` tasks of `cls` with enqueueMany, 50,000 at a time. */
export async function fill(ds: DataSource, cls: typeof Noop | typeof QuietNoop | typeof LeanNoop, count: number): Promise<void> {
  for (let i = 0; i < count; i += 50_000) {
    await enqueueMany(Array.from({ length: Math.min(50_000, count - i) }, () => cls.create({})), { dataSource: ds });
  }
  // No VACUUM ANALYZE and no forced garbage collection before the drain: a user's program that
  // enqueues and then drains gets neither, and the drain must be timed as it gets it (the fill's
  // garbage is collected during the drain, the table's statistics are autovacuum's).
}

/** The value at percentile `p` of sorted numbers, rounded to 0.01. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const v = sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
  return Math.round(v * 100) / 100;
}

export function rate(count: number, ms: number): number {
  return Math.round(count / (ms / 1000));
}

/**
 * CPU time used so far, in ms: by this process, and by every PostgreSQL server process and every
 * MariaDB server on this host (the benchmark's servers run here; one drain uses one of them).
 * Where a drain's time goes on a 2-core machine: the worker's JavaScript and the server's
 * statements share the same cores.
 */
export function cpuNow(): { workerMs: number; serverMs: number; mariadbMs: number } {
  const own = process.cpuUsage();
  let ticks = 0;
  let mariadbTicks = 0;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue; // gone meanwhile
    }
    const close = stat.lastIndexOf(")");
    const name = stat.slice(stat.indexOf("(") + 1, close);
    if (name !== "postgres" && name !== "mariadbd") continue;
    const fields = stat.slice(close + 2).split(" "); // fields[0] is the state (field 3)
    if (name === "mariadbd") {
      // One process; its threads' time is in its own utime and stime.
      mariadbTicks += Number(fields[11]) + Number(fields[12]);
      continue;
    }
    // utime, stime (fields 14, 15), and cutime, cstime (16, 17): the postmaster's reaped children,
    // so that backends whose connection closed before the second reading still count.
    ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  }
  // Linux reports in USER_HZ, 100 per second on every architecture node runs on.
  return { workerMs: (own.user + own.system) / 1000, serverMs: ticks * 10, mariadbMs: mariadbTicks * 10 };
}

/** CPU per task between two `cpuNow()` readings, in µs (server only when one ran here). */
export function cpuPerTask(before: ReturnType<typeof cpuNow>, after: ReturnType<typeof cpuNow>, tasks: number, database: DatabaseName): Pick<Result, "workerCpuUs" | "serverCpuUs"> {
  const us = (ms: number) => Math.round((ms * 1000) / tasks);
  return {
    workerCpuUs: us(after.workerMs - before.workerMs),
    serverCpuUs:
      database === "postgres" ? us(after.serverMs - before.serverMs) : database === "mariadb" ? us(after.mariadbMs - before.mariadbMs) : undefined,
  };
}
