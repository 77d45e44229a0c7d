/**
 * Drain: N no-op tasks queued, one worker in this process, tasks/s until empty; with the enqueue
 * rate of the bulk save that queued them. On SQLite and PostgreSQL, concurrency 1, 10 and 50, and
 * with history off. On PostgreSQL also the ceiling: a plain PL/pgSQL loop that claims and completes
 * in batches of 500 with no client at all, so figures compare across noisy machines.
 *   npm run bench:drain                 (ORMQ_BENCH_TASKS=20000 by default)
 */
import "reflect-metadata";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "pg";
import pino from "pino";
import { ChildEntity, DataSource, type DataSourceOptions } from "typeorm";
import { BaseTaskEntity, ormqDataSourceOptions, processN } from "../src";
import { startBenchPostgres } from "./postgres";

const TASKS = Number(process.env.ORMQ_BENCH_TASKS ?? 20_000);

@ChildEntity("bench_noop")
class Noop extends BaseTaskEntity {
  async run() {}
}

@ChildEntity("bench_noop_quiet")
class QuietNoop extends BaseTaskEntity {
  static history = false;
  async run() {}
}

interface Row {
  database: string;
  scenario: string;
  concurrency?: number;
  tasksPerSecond: number;
}

async function open(url: string): Promise<DataSource> {
  const base = ormqDataSourceOptions(url);
  const ds = new DataSource({ ...base, entities: [...(base.entities as []), Noop, QuietNoop], migrationsRun: true } as DataSourceOptions);
  await ds.initialize();
  await ds.synchronize();
  return ds;
}

async function drain(database: string, url: string, cls: typeof Noop | typeof QuietNoop, concurrency: number): Promise<Row[]> {
  const ds = await open(url);
  try {
    const tasks = Array.from({ length: TASKS }, () => cls.create({}));
    let t0 = performance.now();
    await ds.getRepository(cls).save(tasks, { chunk: 1_000 });
    const enqueue = TASKS / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    const summary = await processN(cls, TASKS, { dataSource: ds, concurrency, batchSize: Math.max(concurrency, 50), logger: pino({ level: "warn" }) });
    const rate = summary.succeeded / ((performance.now() - t0) / 1000);
    const history = cls === Noop ? "history on" : "history off";
    return [
      { database, scenario: `bulk enqueue, save([...], { chunk: 1000 }), ${history}`, tasksPerSecond: Math.round(enqueue) },
      { database, scenario: `drain ${TASKS}, ${history}`, concurrency, tasksPerSecond: Math.round(rate) },
    ];
  } finally {
    await ds.destroy();
  }
}

/** The naive ceiling from NOTES.md: claim and complete in batches of 500, in the server. */
async function sqlCeiling(adminUrl: string): Promise<Row> {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`DROP TABLE IF EXISTS bench_ceiling`);
    await client.query(`CREATE TABLE bench_ceiling (id bigserial PRIMARY KEY, status text NOT NULL DEFAULT 'pending', priority int NOT NULL DEFAULT 0, run_at bigint NOT NULL DEFAULT 0, locked_by text)`);
    await client.query(`CREATE INDEX ON bench_ceiling (priority DESC, run_at, id) WHERE status = 'pending'`);
    await client.query(`INSERT INTO bench_ceiling (run_at) SELECT 0 FROM generate_series(1, $1)`, [TASKS]);
    await client.query(`VACUUM ANALYZE bench_ceiling`);
    const t0 = performance.now();
    await client.query(`
      DO $$
      DECLARE ids bigint[];
      BEGIN
        LOOP
          WITH picked AS MATERIALIZED (
            SELECT id FROM bench_ceiling WHERE status = 'pending' ORDER BY priority DESC, run_at, id LIMIT 500 FOR UPDATE SKIP LOCKED
          ), claimed AS (
            UPDATE bench_ceiling t SET status = 'running', locked_by = 'w' FROM picked WHERE t.id = picked.id RETURNING t.id
          )
          SELECT array_agg(id) INTO ids FROM claimed;
          EXIT WHEN ids IS NULL;
          UPDATE bench_ceiling SET status = 'succeeded', locked_by = NULL WHERE id = ANY(ids);
          COMMIT;
        END LOOP;
      END $$`);
    const rate = TASKS / ((performance.now() - t0) / 1000);
    return { database: "postgres", scenario: `plain SQL loop, batches of 500, no client (ceiling)`, tasksPerSecond: Math.round(rate) };
  } finally {
    await client.query(`DROP TABLE IF EXISTS bench_ceiling`).catch(() => {});
    await client.end();
  }
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "ormq-bench-"));
  const pg = await startBenchPostgres();
  const rows: Row[] = [];
  const record = (more: Row[]) => {
    for (const row of more) {
      console.log(JSON.stringify({ benchmark: "drain", tasks: TASKS, ...row }));
      rows.push(row);
    }
  };
  let n = 0;
  const fresh = async (database: string) => {
    n++;
    if (database === "sqlite") return join(dir, `drain-${n}.sqlite`);
    const admin = new Client({ connectionString: pg.url });
    await admin.connect();
    await admin.query(`CREATE DATABASE bench_${n}`);
    await admin.end();
    const url = new URL(pg.url);
    url.pathname = `/bench_${n}`;
    return url.toString();
  };
  try {
    const databases = (process.env.ORMQ_BENCH_DATABASES ?? "sqlite,postgres").split(",");
    for (const database of databases) {
      for (const concurrency of [1, 10, 50]) record(await drain(database, await fresh(database), Noop, concurrency));
      record(await drain(database, await fresh(database), QuietNoop, 10));
    }
    if (databases.includes("postgres")) record([await sqlCeiling(pg.url)]);
    console.log(`\ndrain of ${TASKS} no-op tasks, one worker process (tasks/s)`);
    console.table(rows);
  } finally {
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
