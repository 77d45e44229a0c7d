/**
 * Scheduled precision: tasks due 1.5 s after their enqueue; how late does run() start?
 * One process (enqueuer and worker), default worker options, on SQLite and on PostgreSQL.
 *   npm run bench:scheduled            (ORMQ_BENCH_TASKS=200 by default)
 * Prints one JSON line per database and a table. Lateness = run() start − runAt, both read on
 * this host's clock (runAt is set from the database's clock, the same host here).
 */
import "reflect-metadata";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { ChildEntity, DataSource, type DataSourceOptions } from "typeorm";
import { BaseTaskEntity, ormqDataSourceOptions, processForever } from "../src";
import { startBenchPostgres } from "./postgres";

const TASKS = Number(process.env.ORMQ_BENCH_TASKS ?? 200);
const AHEAD_MS = 1_500;
const started = new Map<string, number>();

@ChildEntity("bench_scheduled")
class ScheduledNoop extends BaseTaskEntity {
  async run() {
    started.set(this.id, Date.now());
  }
}

async function measure(name: string, url: string) {
  const base = ormqDataSourceOptions(url);
  const ds = new DataSource({ ...base, entities: [...(base.entities as []), ScheduledNoop], migrationsRun: true } as DataSourceOptions);
  await ds.initialize();
  await ds.synchronize();
  started.clear();
  const controller = new AbortController();
  const worker = processForever(ScheduledNoop, { dataSource: ds, signal: controller.signal, logger: pino({ level: "warn" }) });
  const runAt = new Map<string, number>();
  for (let i = 0; i < TASKS; i++) {
    const task = await ds.getRepository(ScheduledNoop).save(ScheduledNoop.create({}).delay(AHEAD_MS));
    runAt.set(task.id, task.runAt.getTime());
    await sleep(5 + Math.random() * 10); // spread the due times
  }
  while (started.size < TASKS) await sleep(50);
  controller.abort();
  await worker;
  await ds.destroy();
  const lateness = [...runAt].map(([id, at]) => started.get(id)! - at).sort((a, b) => a - b);
  const pct = (p: number) => lateness[Math.min(lateness.length - 1, Math.floor((p / 100) * lateness.length))];
  const result = { scenario: "scheduled", database: name, tasks: TASKS, aheadMs: AHEAD_MS, p50: pct(50), p95: pct(95), p99: pct(99), max: lateness.at(-1), min: lateness[0] };
  console.log(JSON.stringify(result));
  return result;
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "ormq-bench-"));
  const pg = await startBenchPostgres();
  try {
    const rows = [await measure("sqlite", join(dir, "bench.sqlite")), await measure("postgres", pg.url)];
    console.log("\nscheduled tasks, lateness of run() start after runAt (ms)");
    console.table(rows.map(({ database, tasks, p50, p95, p99, max }) => ({ database, tasks, p50, p95, p99, max })));
  } finally {
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
