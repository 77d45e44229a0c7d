/**
 * Churn: tasks enqueued at half the rate one worker drains at its defaults, for ten minutes
 * (ORMQ_BENCH_CHURN_MS), with `prune` on in the worker (finished tasks older than 10 s, every
 * 10 s). Every minute: the rate tasks finished at, the backlog, and the sizes of ormq's tables
 * with their indexes, to show whether they level off and the rate holds under default autovacuum.
 */
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { enqueueMany, processForever, processN } from "../../src";
import { Databases, fill, Noop, open, rate, type Result } from "../common";

export async function churn(databases: Databases, durationMs: number): Promise<Result[]> {
  const url = await databases.fresh("postgres");
  const ds = await open(url);
  const producer = await open(url, { migrationsRun: false });
  const logger = pino({ level: "warn" });
  const results: Result[] = [];
  try {
    // The maximum, measured here: a drain of 20,000 at the defaults.
    await fill(ds, Noop, 20_000);
    let t0 = performance.now();
    await processN(Noop, 20_000, { dataSource: ds, logger });
    const max = rate(20_000, performance.now() - t0);
    const target = Math.round(max / 2);
    let finished = 0;
    const controller = new AbortController();
    const worker = processForever(Noop, {
      dataSource: ds,
      signal: controller.signal,
      logger,
      prune: { olderThan: 10_000, intervalMs: 10_000 },
      onAttemptFinished: () => void finished++,
    });
    let producing = true;
    const production = (async () => {
      // A tenth of a second's worth every tenth of a second.
      const perTick = Math.max(1, Math.round(target / 10));
      let next = performance.now();
      while (producing) {
        await enqueueMany(Array.from({ length: perTick }, () => Noop.create({})), { dataSource: producer });
        next += 100;
        await sleep(Math.max(0, next - performance.now()));
      }
    })();
    const sizeMb = async (table: string) => Math.round(Number((await ds.query(`SELECT pg_total_relation_size('${table}') AS b`))[0].b) / 2 ** 20);
    const start = performance.now();
    let lastFinished = 0;
    t0 = performance.now();
    try {
      for (let minute = 1; performance.now() - start < durationMs; minute++) {
        await sleep(Math.min(60_000, durationMs - (performance.now() - start)));
        const now = performance.now();
        const done = finished - lastFinished;
        const tasksMb = await sizeMb("ormq_tasks");
        const eventsMb = await sizeMb("ormq_task_events");
        const [{ n: backlog }] = await ds.query(`SELECT COUNT(*) AS n FROM ormq_tasks WHERE status = 'pending'`);
        results.push({
          scenario: "churn",
          database: "postgres",
          variant: `minute ${minute}: enqueued at ${target}/s (half the ${max}/s maximum), prune on; ormq_tasks ${tasksMb} MB, ormq_task_events ${eventsMb} MB (with indexes), ${backlog} pending`,
          tasks: done,
          tasksPerSecond: rate(done, now - t0),
        });
        lastFinished = finished;
        t0 = now;
      }
    } finally {
      producing = false;
      await production;
      controller.abort();
      await worker;
    }
    return results;
  } finally {
    await producer.destroy();
    await ds.destroy();
  }
}
