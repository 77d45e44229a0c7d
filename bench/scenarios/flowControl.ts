/**
 * Flow control's cost: a drain of tasks under a per-key concurrency limit (2 per key over 1,000
 * keys) and under a rate limit far above the drain's pace, beside the same drain with no limit
 * (the default settings each time); and enqueueing unique tasks one save() at a time beside plain
 * ones.
 */
import pino from "pino";
import { enqueueMany, processN } from "../../src";
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
