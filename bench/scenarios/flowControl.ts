/**
 * Flow control's cost: a drain of tasks under a per-key concurrency limit (2 per key over 1,000
 * keys) and under a rate limit far above the drain's pace, beside the same drain with no limit
 * (the default settings each time); and enqueueing unique tasks one save() at a time beside plain
 * ones.
 */
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import type { DataSource } from "typeorm";
import { enqueueMany, ormqFor, processN } from "../../src";
import { cpuNow, cpuPerTask, LimitedNoop, open, QuietNoop, rate, RatedNoop, UniqueNoop, type Databases, type DatabaseName, type Result } from "../common";

export async function limitedDrains(databases: Databases, database: DatabaseName, tasks: number): Promise<Result[]> {
  const results: Result[] = [];
  const variants = [
    { variant: "no limit (defaults)", make: () => QuietNoop.create({}), cls: QuietNoop },
    { variant: "concurrencyLimit 2 per key, 1,000 keys (defaults)", make: (i: number) => LimitedNoop.create({ benchKey: `k${i % 1000}` }), cls: LimitedNoop },
    { variant: "rateLimit 5,000/s (defaults)", make: () => RatedNoop.create({}), cls: RatedNoop },
  ] as const;
  for (const { variant, make, cls } of variants) {
    const ds = await open(await databases.fresh(database));
    try {
      for (let i = 0; i < tasks; i += 50_000) {
        await enqueueMany(Array.from({ length: Math.min(50_000, tasks - i) }, (_, j) => make(i + j)), { dataSource: ds });
      }
      if (ds.options.type === "postgres") await ds.query(`VACUUM ANALYZE ormq_tasks`);
      const cpu0 = cpuNow();
      const t0 = performance.now();
      let done = 0;
      // processN ends when nothing is ready: tasks a limit holds back are taken by the next round.
      while (done < tasks) done += (await processN(cls, tasks - done, { dataSource: ds, logger: pino({ level: "warn" }) })).succeeded;
      const ms = performance.now() - t0;
      results.push({ scenario: "flow control", database, variant: `drain, ${variant}`, tasks, tasksPerSecond: rate(tasks, ms), ...cpuPerTask(cpu0, cpuNow(), tasks, database) });
    } finally {
      await ds.destroy();
    }
  }
  return results;
}

export async function uniqueEnqueue(databases: Databases, database: DatabaseName, count: number): Promise<Result[]> {
  const results: Result[] = [];
  for (const [variant, make] of [
    ["save() one at a time, no unique", (i: number) => QuietNoop.create({ priority: i % 1 })],
    ["save() one at a time, unique key (each new)", (i: number) => UniqueNoop.create({ benchKey: `k${i}` })],
    ["save() one at a time, unique key (each a duplicate)", () => UniqueNoop.create({ benchKey: "same" })],
  ] as const) {
    const ds = await open(await databases.fresh(database));
    try {
      const t0 = performance.now();
      for (let i = 0; i < count; i++) await make(i).save();
      results.push({ scenario: "flow control", database, variant: `enqueue, ${variant}`, tasks: count, tasksPerSecond: rate(count, performance.now() - t0) });
    } finally {
      await ds.destroy();
    }
  }
  return results;
}

/**
 * The case that deadlocks other queues on MySQL: 8 workers (each on a DataSource of its own, as 8
 * processes would be) with concurrency 20 on one queue, every task under a per-key concurrency
 * limit (2 per key over 1,000 keys). Reports the drain's rate, the transactions the database
 * refused as deadlocks or lock wait timeouts (run again: `database:retried`), and the attempts
 * that failed (none should).
 */
export async function keyedWorkers(databases: Databases, database: DatabaseName, tasks: number): Promise<Result> {
  const url = await databases.fresh(database);
  const setup = await open(url);
  const sources: DataSource[] = [];
  try {
    for (let i = 0; i < tasks; i += 50_000) {
      await enqueueMany(Array.from({ length: Math.min(50_000, tasks - i) }, (_, j) => LimitedNoop.create({ benchKey: `k${(i + j) % 1000}` })), { dataSource: setup });
    }
    for (let i = 0; i < 8; i++) sources.push(await open(url, { migrationsRun: false }));
    const retried = { deadlock: 0, lock_wait_timeout: 0 };
    for (const ds of sources) ormqFor(ds).on("database:retried", (e) => retried[e.reason]++);
    let done = 0;
    let failedForGood = 0;
    let failed = 0;
    const t0 = performance.now();
    await Promise.all(
      sources.map(async (ds) => {
        // processN ends when nothing is ready for it: tasks the limit holds back go to the next
        // round. A task that failed for good ends too (it is what this scenario reports).
        while (done + failedForGood < tasks) {
          const summary = await processN(LimitedNoop, tasks - done - failedForGood, { dataSource: ds, concurrency: 20, logger: pino({ level: "warn" }) });
          done += summary.succeeded;
          failedForGood += summary.failed;
          failed += summary.failed + summary.retried;
          if (summary.processed === 0) await sleep(5);
        }
      }),
    );
    const ms = performance.now() - t0;
    return {
      scenario: "flow control",
      database,
      variant: `8 workers × concurrency 20 on one queue, concurrencyLimit 2 per key over 1,000 keys: deadlocks ${retried.deadlock}, lock wait timeouts ${retried.lock_wait_timeout} (run again), attempts failed ${failed}`,
      tasks,
      tasksPerSecond: rate(tasks, ms),
      transientRetries: retried.deadlock + retried.lock_wait_timeout,
      failedAttempts: failed,
    };
  } finally {
    for (const ds of sources) await ds.destroy();
    await setup.destroy();
  }
}
