/**
 * Latency as a user sees it: an idle worker (defaults, in this process); tasks enqueued one at a
 * time with `task.save()` outside any transaction, a few ms apart; three times per task:
 * - `save()` called → `run()` starting (what the user waits for),
 * - the enqueuing commit → `run()` starting (the worker's share; the commit time is taken in an
 *   afterTransactionCommit subscriber, the moment the database acknowledged the COMMIT here),
 * - `save()` alone.
 * On a fresh database, and right after a drain of `drained` tasks (a table with dead rows and a
 * warm worker). graphile-worker the same way, from `addJob` to its handler.
 */
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { ChildEntity, EventSubscriber, type EntitySubscriberInterface, type DataSource } from "typeorm";
import { BaseTaskEntity, enqueueMany, processForever, processN } from "../../src";
import { Databases, open, percentile, withClient, type DatabaseName, type Result } from "../common";
import { ownedPool, quietGraphileLogger } from "./others";

const started = new Map<string, number>();
let lastCommitAt = 0;

/** Records when run() starts. */
@ChildEntity("bench_latency")
export class LatencyProbe extends BaseTaskEntity {
  async run() {
    started.set(this.id, performance.now());
  }
}

/**
 * Records when an enqueue committed (for every DataSource it is registered with): when the
 * autocommitted INSERT returned, or, in a transaction, when its COMMIT did (which comes later).
 */
@EventSubscriber()
export class CommitClock implements EntitySubscriberInterface {
  afterInsert(): void {
    lastCommitAt = performance.now();
  }

  afterTransactionCommit(): void {
    lastCommitAt = performance.now();
  }
}

/** p50 and p99 of each series, one Result each. */
function summarise(database: Result["database"], variant: string, series: Record<string, number[]>): Result[] {
  return Object.entries(series).map(([what, times]) => {
    times.sort((a, b) => a - b);
    return {
      scenario: "latency",
      database,
      variant: `${what}; ${variant}`,
      tasks: times.length,
      p50: percentile(times, 50),
      p95: percentile(times, 95),
      p99: percentile(times, 99),
      max: percentile(times, 100),
    };
  });
}

/**
 * Enqueues `samples` probe tasks one at a time through `enqueuer` with `task.save()`, a few ms
 * apart, each once the previous one started; an idle worker of LatencyProbe must be running.
 * Returns the three series, in ms, unsorted.
 */
export async function sampleLatency(enqueuer: DataSource, samples: number): Promise<Record<"save() called → run() start" | "commit → run() start" | "save() alone", number[]>> {
  const series = { "save() called → run() start": [] as number[], "commit → run() start": [] as number[], "save() alone": [] as number[] };
  LatencyProbe.useDataSource(enqueuer);
  for (let i = 0; i < samples; i++) {
    const calledAt = performance.now();
    const task = await LatencyProbe.create({}).save();
    const savedAt = performance.now();
    const committedAt = lastCommitAt;
    const deadline = Date.now() + 5_000;
    while (!started.has(task.id)) {
      if (Date.now() > deadline) throw new Error(`latency: task ${task.id} did not start within 5 s`);
      await sleep(0.2);
    }
    const runAt = started.get(task.id)!;
    series["save() called → run() start"].push(runAt - calledAt);
    series["commit → run() start"].push(runAt - committedAt);
    series["save() alone"].push(savedAt - calledAt);
    await sleep(1 + Math.random() * 2); // idle again before the next one
  }
  return series;
}

/**
 * `via`: "same" enqueues through the worker's DataSource (this process's wake-up); "other" through
 * a second DataSource, as another process would (PostgreSQL's NOTIFY). `drained`: tasks drained
 * just before (0: a fresh database).
 */
export async function latency(databases: Databases, database: DatabaseName, samples: number, via: "same" | "other" = "same", drained = 0): Promise<Result[]> {
  const url = await databases.fresh(database);
  const probe = { entities: [LatencyProbe], subscribers: [CommitClock] };
  const ds = await open(url, probe);
  const enqueuer: DataSource = via === "same" ? ds : await open(url, { ...probe, migrationsRun: false });
  const controller = new AbortController();
  const logger = pino({ level: "warn" });
  let worker: Promise<unknown> | undefined;
  try {
    if (drained > 0) {
      await enqueueMany(Array.from({ length: drained }, () => LatencyProbe.create({})), { dataSource: ds });
      await processN(LatencyProbe, drained, { dataSource: ds, logger });
      started.clear();
    }
    worker = processForever(LatencyProbe, { dataSource: ds, signal: controller.signal, logger });
    await sleep(200); // the worker has registered and is asleep
    const series = await sampleLatency(enqueuer, samples);
    const where = via === "same" ? "enqueued in the worker's process" : "enqueued through another connection";
    return summarise(database, `${where}, ${drained > 0 ? `after a drain of ${drained}` : "fresh database"}`, series);
  } finally {
    controller.abort();
    await worker;
    if (enqueuer !== ds) await enqueuer.destroy();
    await ds.destroy();
    started.clear();
  }
}

/** graphile-worker 0.18 at its defaults: `addJob` called → handler start, the same way. */
export async function graphileLatency(databases: Databases, samples: number, drained = 0): Promise<Result[]> {
  const url = await databases.fresh("postgres");
  const gw = await import("graphile-worker");
  const logger = quietGraphileLogger(gw);
  // A pool the scenario owns and ends (see ownedPool): graphile-worker's own, made from a
  // connection string, could outlive it, and the next scenario's drop of this database then
  // ended the whole run on that pool's unhandled error event (seen in a smoke run).
  const pgPool = ownedPool(url);
  await gw.runMigrations({ pgPool, logger });
  const handled = new Map<string, number>();
  let drainedCount = 0;
  let drainedAll: () => void = () => {};
  const allDrained = new Promise<void>((resolve) => (drainedAll = resolve));
  const runner = await gw.run({
    pgPool,
    concurrency: 10,
    noHandleSignals: true,
    logger,
    taskList: {
      probe: async (payload: unknown) => {
        handled.set((payload as { n: string }).n, performance.now());
      },
      fill: async () => {
        if (++drainedCount === drained) drainedAll();
      },
    },
  });
  try {
    if (drained > 0) {
      await withClient(url, (c) => c.query(`SELECT graphile_worker.add_job('fill', '{}'::json) FROM generate_series(1, $1)`, [drained]));
      await allDrained;
    }
    await sleep(200);
    const series = await sampleOther("addJob()", "handler", samples, handled, (n) => runner.addJob("probe", { n }));
    return summarise("postgres (graphile-worker)", `graphile-worker 0.18 defaults, ${drained > 0 ? `after a drain of ${drained}` : "fresh database"}`, series);
  } finally {
    await runner.stop();
    await pgPool.end();
  }
}

/**
 * plainjob 0.0.14 on SQLite: `add()` called → processor start, the same way, its worker polling
 * every 10 ms (as in the drain; its default, 1 s, would make its latency the poll's). It has no
 * wake-up: a job waits for the next poll.
 */
export async function plainjobLatency(databases: Databases, samples: number, drained = 0): Promise<Result[]> {
  const file = await databases.fresh("sqlite");
  const pj = await import("plainjob");
  const Database = (await import("better-sqlite3")).default;
  const silent = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} };
  const connection = pj.better(new Database(file));
  const queue = pj.defineQueue({ connection, logger: silent });
  const handled = new Map<string, number>();
  let drainedCount = 0;
  let drainedAll: () => void = () => {};
  const allDrained = new Promise<void>((resolve) => (drainedAll = resolve));
  const probe = pj.defineWorker("probe", async (job: { data: string }) => void handled.set((JSON.parse(job.data) as { n: string }).n, performance.now()), { queue, pollIntervall: 10, logger: silent });
  const filler = pj.defineWorker("fill", async () => void (++drainedCount === drained && drainedAll()), { queue, pollIntervall: 10, logger: silent });
  void probe.start();
  try {
    if (drained > 0) {
      void filler.start();
      for (let i = 0; i < drained; i += 1_000) queue.addMany("fill", Array.from({ length: Math.min(1_000, drained - i) }, () => ({})));
      await allDrained;
      await filler.stop();
    }
    await sleep(200);
    const series = await sampleOther("add()", "processor", samples, handled, (n) => void queue.add("probe", { n }));
    return summarise("sqlite (plainjob)", `plainjob 0.0.14, its worker polling every 10 ms, ${drained > 0 ? `after a drain of ${drained}` : "fresh database"}`, series);
  } finally {
    await probe.stop();
    queue.close();
  }
}

/**
 * Another queue's latency series, sampled as sampleLatency samples ormq's: `samples` jobs enqueued
 * one at a time through `add`, a few ms apart, each once the previous one started (`handled` gets
 * its start time by job number). Series named "<call> called → <runner> start" and "<call> alone".
 */
async function sampleOther(call: string, runner: string, samples: number, handled: Map<string, number>, add: (n: string) => Promise<unknown> | void): Promise<Record<string, number[]>> {
  const total: number[] = [];
  const alone: number[] = [];
  for (let i = 0; i < samples; i++) {
    const n = String(i);
    const calledAt = performance.now();
    await add(n);
    const addedAt = performance.now();
    const deadline = Date.now() + 5_000;
    while (!handled.has(n)) {
      if (Date.now() > deadline) throw new Error(`latency: ${call} job ${n} did not start within 5 s`);
      await sleep(0.2);
    }
    total.push(handled.get(n)! - calledAt);
    alone.push(addedAt - calledAt);
    await sleep(1 + Math.random() * 2);
  }
  return { [`${call} called → ${runner} start`]: total, [`${call} alone`]: alone };
}
