/**
 * Workflows (issue 28): a fan-out of `size` children from one parent (ctx.enqueue) and a fan-in
 * of `size` dependencies into one task (dependsOn), each drained by one worker at the defaults
 * beside a drain of `size` independent tasks of the same kind, in the same run. For the fan-in:
 * how long after the last dependency's outcome the task it leads to starts, and the slowest
 * statement ormq's workflow code ran through TypeORM (edges, settles).
 */
import pino from "pino";
import { ChildEntity, type Logger as TypeOrmLogger } from "typeorm";
import { setTimeout as sleep } from "node:timers/promises";
import { BaseTaskEntity, enqueueMany, ormqFor, processForever, processN, type TaskContext } from "../../src";
import { cpuNow, cpuPerTask, Databases, open, rate, type DatabaseName, type Result } from "../common";

/** A child, a dependency or an independent task: a no-op. */
@ChildEntity("bench_wf_leaf")
export class WfLeaf extends BaseTaskEntity {
  async run() {}
}

/** Gives `WfParent.size` children and succeeds. */
@ChildEntity("bench_wf_parent")
export class WfParent extends BaseTaskEntity {
  static size = 0;
  async run(ctx: TaskContext) {
    ctx.enqueue(Array.from({ length: WfParent.size }, () => WfLeaf.create({})));
  }
}

/** The fan-in's task: records when it starts. */
@ChildEntity("bench_wf_sink")
export class WfSink extends BaseTaskEntity {
  static startedAt = 0;
  async run() {
    WfSink.startedAt = performance.now();
  }
}

/** Statements slower than `limitMs` that went through TypeORM, and the slowest one's time (ORMQ_BENCH_SHOW_SLOW=1 prints them). */
function slowStatements(limitMs: number): { options: { logger: TypeOrmLogger; maxQueryExecutionTime: number }; slowest: () => number; count: () => number } {
  let slowest = 0;
  let count = 0;
  const logger: TypeOrmLogger = {
    logQuery: () => {},
    logQueryError: () => {},
    logQuerySlow: (time, query) => {
      if (process.env.ORMQ_BENCH_SHOW_SLOW) console.error(`slow statement ${time} ms: ${query.slice(0, 300)}`);
      count++;
      slowest = Math.max(slowest, time);
    },
    logSchemaBuild: () => {},
    logMigration: () => {},
    log: () => {},
  };
  return { options: { logger, maxQueryExecutionTime: limitMs }, slowest: () => slowest, count: () => count };
}

export async function workflows(databases: Databases, database: DatabaseName, size: number): Promise<Result[]> {
  const results: Result[] = [];
  const logger = pino({ level: "warn" });
  const probe = { entities: [WfLeaf, WfParent, WfSink] };

  // Independent tasks, the reference.
  {
    const ds = await open(await databases.fresh(database), probe);
    try {
      await enqueueMany(Array.from({ length: size }, () => WfLeaf.create({})), { dataSource: ds });
      const cpu0 = cpuNow();
      const t0 = performance.now();
      const summary = await processN(WfLeaf, size, { dataSource: ds, logger });
      const ms = performance.now() - t0;
      if (summary.succeeded !== size) throw new Error(`workflows: ${summary.succeeded} of ${size} independent tasks succeeded`);
      results.push({ scenario: "workflows", database, variant: `${size} independent tasks (the reference), defaults`, tasks: size, tasksPerSecond: rate(size, ms), ...cpuPerTask(cpu0, cpuNow(), size, database) });
    } finally {
      await ds.destroy();
    }
  }

  // Fan-out: one parent gives every child in its attempt's commit; then the children drain.
  {
    const slow = slowStatements(100);
    const ds = await open(await databases.fresh(database), { ...probe, ...slow.options });
    try {
      WfParent.size = size;
      await enqueueMany([WfParent.create({})], { dataSource: ds });
      const t0 = performance.now();
      await processN(WfParent, 1, { dataSource: ds, logger });
      const parentMs = performance.now() - t0;
      const cpu0 = cpuNow();
      const t1 = performance.now();
      const summary = await processN(WfLeaf, size, { dataSource: ds, logger });
      const ms = performance.now() - t1;
      if (summary.succeeded !== size) throw new Error(`workflows: ${summary.succeeded} of ${size} children succeeded`);
      results.push({
        scenario: "workflows",
        database,
        variant: `fan-out: ${size} children of one parent (ctx.enqueue), drained at the defaults; the parent's attempt with its children's commit took ${Math.round(parentMs)} ms; statements over 100 ms: ${slow.count()}${slow.count() > 0 ? ` (slowest ${slow.slowest()} ms)` : ""}`,
        tasks: size,
        tasksPerSecond: rate(size, ms),
        ...cpuPerTask(cpu0, cpuNow(), size, database),
      });
    } finally {
      await ds.destroy();
    }
  }

  // Fan-in: one task depends on every one of the others; it starts once the last has succeeded.
  {
    const slow = slowStatements(100);
    const ds = await open(await databases.fresh(database), { ...probe, ...slow.options });
    try {
      const leaves = Array.from({ length: size }, () => WfLeaf.create({}));
      await enqueueMany([...leaves, WfSink.create({ dependsOn: leaves })], { dataSource: ds });
      let lastSucceededAt = 0;
      const off = ormqFor(ds).on("task:succeeded", (e) => {
        if (e.type === "bench_wf_leaf") lastSucceededAt = performance.now();
      });
      WfSink.startedAt = 0;
      // Its worker waits, idle, for the wake-up its release sends (no poll would find it sooner).
      const stop = new AbortController();
      const sink = processForever(WfSink, { dataSource: ds, logger, pollIntervalMs: 60_000, signal: stop.signal });
      const cpu0 = cpuNow();
      const t0 = performance.now();
      const summary = await processN(WfLeaf, size, { dataSource: ds, logger });
      const ms = performance.now() - t0;
      const cpu = cpuPerTask(cpu0, cpuNow(), size, database);
      const deadline = Date.now() + 10_000;
      while (WfSink.startedAt === 0 && Date.now() < deadline) await sleep(1);
      stop.abort();
      await sink;
      off();
      if (summary.succeeded !== size || WfSink.startedAt === 0) throw new Error(`workflows: the fan-in did not run (${summary.succeeded} of ${size} dependencies succeeded)`);
      results.push({
        scenario: "workflows",
        database,
        variant: `fan-in: ${size} dependencies of one task (dependsOn), drained at the defaults; the task started ${(WfSink.startedAt - lastSucceededAt).toFixed(1)} ms after the last dependency's outcome; statements over 100 ms: ${slow.count()}${slow.count() > 0 ? ` (slowest ${slow.slowest()} ms)` : ""}`,
        tasks: size,
        tasksPerSecond: rate(size, ms),
        p50: Math.round((WfSink.startedAt - lastSucceededAt) * 10) / 10,
        ...cpu,
      });
    } finally {
      await ds.destroy();
    }
  }
  return results;
}
