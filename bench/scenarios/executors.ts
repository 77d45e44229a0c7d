/**
 * What each place run() can run costs (`static executor`): on the event loop, in a thread, in a
 * child process. No-op tasks, a worker at its defaults (concurrency 10; threads and processes
 * min(concurrency, CPUs)), in this process:
 * - start-up: one task enqueued, a worker started, until it finished; a thread or a process loads
 *   the bootstrap module and opens its DataSource first (the pools start lazily, at the first task);
 * - per task: then a drain of `tasks` tasks by the same worker (its pool warm), in tasks a second
 *   and µs a task (wall time: a process task's CPU is spent in its process).
 */
import { join } from "node:path";
import pino from "pino";
import { enqueueMany, processForever } from "../../src";
import { open, rate, type Databases, type DatabaseName, type Result } from "../common";
import { AsyncNoop, executorEntities, ProcessNoop, ThreadNoop } from "../executors/tasks";

const BOOTSTRAP = join(__dirname, "..", "executors", "bootstrap.js");

export async function executors(databases: Databases, database: DatabaseName, tasks: number): Promise<Result[]> {
  const results: Result[] = [];
  for (const [name, cls] of [["event loop", AsyncNoop], ["thread", ThreadNoop], ["process", ProcessNoop]] as const) {
    const url = await databases.fresh(database);
    // The threads' and processes' bootstrap module opens the database named here.
    process.env.ORMQ_DATABASE_URL = url;
    const ds = await open(url, { entities: executorEntities });
    const stop = new AbortController();
    let finished = 0;
    let waiter: { count: number; resolve: () => void } | undefined;
    const reach = (count: number) => new Promise<void>((resolve) => (finished >= count ? resolve() : (waiter = { count, resolve })));
    try {
      await enqueueMany([cls.create({})], { dataSource: ds });
      const t0 = performance.now();
      const worker = processForever(cls, {
        dataSource: ds,
        bootstrap: BOOTSTRAP,
        logger: pino({ level: "warn" }),
        scheduler: false,
        signal: stop.signal,
        onAttemptFinished: () => {
          finished++;
          if (waiter && finished >= waiter.count) waiter.resolve();
        },
      });
      await reach(1);
      results.push({ scenario: "executors", database, variant: `${name}: start-up, worker start to its first task done (ms, in p50)`, tasks: 1, p50: Math.round(performance.now() - t0) });
      const t1 = performance.now();
      for (let i = 0; i < tasks; i += 10_000) await enqueueMany(Array.from({ length: Math.min(10_000, tasks - i) }, () => cls.create({})), { dataSource: ds });
      await reach(1 + tasks);
      const ms = performance.now() - t1;
      results.push({ scenario: "executors", database, variant: `${name}: drain at the defaults, the same worker (µs a task, in p50)`, tasks, tasksPerSecond: rate(tasks, ms), p50: Math.round((ms * 1000) / tasks) });
      stop.abort();
      await worker;
    } finally {
      stop.abort();
      await ds.destroy();
    }
  }
  return results;
}
