/**
 * Scheduled precision: tasks due 1.5 s after their enqueue; how late does run() start? One
 * process (enqueuer and worker), default worker options. Lateness = run() start − runAt, both on
 * this host's clock (runAt is set from the database's clock, the same host here).
 */
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { ChildEntity } from "typeorm";
import { BaseTaskEntity, processForever } from "../../src";
import { Databases, open, percentile, type DatabaseName, type Result } from "../common";

const AHEAD_MS = 1_500;
const started = new Map<string, number>();

@ChildEntity("bench_scheduled")
export class ScheduledProbe extends BaseTaskEntity {
  async run() {
    started.set(this.id, Date.now());
  }
}

export async function scheduled(databases: Databases, database: DatabaseName, tasks: number): Promise<Result> {
  const ds = await open(await databases.fresh(database), { entities: [ScheduledProbe] });
  started.clear();
  const controller = new AbortController();
  const worker = processForever(ScheduledProbe, { dataSource: ds, signal: controller.signal, logger: pino({ level: "warn" }) });
  try {
    const runAt = new Map<string, number>();
    for (let i = 0; i < tasks; i++) {
      const task = await ds.getRepository(ScheduledProbe).save(ScheduledProbe.create({}).delay(AHEAD_MS));
      runAt.set(task.id, task.runAt.getTime());
      await sleep(5 + Math.random() * 10); // spread the due times
    }
    const deadline = Date.now() + AHEAD_MS + 30_000;
    while (started.size < tasks) {
      if (Date.now() > deadline) throw new Error(`scheduled: ${started.size} of ${tasks} started`);
      await sleep(50);
    }
    const lateness = [...runAt].map(([id, at]) => started.get(id)! - at).sort((a, b) => a - b);
    return {
      scenario: "scheduled",
      database,
      variant: `due ${AHEAD_MS} ms ahead, lateness of run() start (ms), default options`,
      tasks,
      p50: percentile(lateness, 50),
      p95: percentile(lateness, 95),
      p99: percentile(lateness, 99),
      max: percentile(lateness, 100),
    };
  } finally {
    controller.abort();
    await worker;
    await ds.destroy();
  }
}
