/**
 * The same drain with other queues, side by side: graphile-worker 0.18 at its defaults and with
 * its batching (local queue of 500, batched completion) on PostgreSQL, and plainjob 0.0.14 on
 * SQLite; and their bulk enqueue (graphile-worker's add_jobs, plainjob's addMany).
 */
import Database from "better-sqlite3";
import { Pool } from "pg";
import { cpuNow, cpuPerTask, rate, withClient, type Databases, type Result } from "../common";

/**
 * graphile-worker's batching: jobs fetched into a local queue and completions written in batches.
 * "batched" is the configuration the targets name; "matched" gives it what ormq's tuned drain
 * has, 100 slots and batches of 1,000, to show what the batch size alone is worth on each side.
 */
export const GRAPHILE_BATCHING = {
  batched: { concurrency: 10, localQueue: 500 },
  matched: { concurrency: 100, localQueue: 1_000 },
} as const;

export async function graphileWorker(databases: Databases, tasks: number, batching: keyof typeof GRAPHILE_BATCHING | null): Promise<Result> {
  const concurrency = batching ? GRAPHILE_BATCHING[batching].concurrency : 10;
  const localQueue = batching ? GRAPHILE_BATCHING[batching].localQueue : 0;
  const url = await databases.fresh("postgres");
  const gw = await import("graphile-worker");
  const pgPool = ownedPool(url);
  await gw.runMigrations({ pgPool, logger: quietGraphileLogger(gw) });
  // Filled as a user's program fills it, in this process, through its own bulk enqueue (as ormq's
  // side uses enqueueMany), and drained at once: no VACUUM, no forced collection in between.
  const utils = await gw.makeWorkerUtils({ pgPool, logger: quietGraphileLogger(gw) });
  for (let i = 0; i < tasks; i += 10_000) await utils.addJobs(Array.from({ length: Math.min(10_000, tasks - i) }, () => ({ identifier: "noop", payload: {} })));
  await utils.release();
  let done = 0;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const cpu0 = cpuNow();
  const t0 = performance.now();
  const runner = await gw.run({
    pgPool,
    concurrency,
    noHandleSignals: true,
    pollInterval: 1_000,
    logger: quietGraphileLogger(gw),
    taskList: {
      noop: async () => {
        if (++done === tasks) finish();
      },
    },
    ...(batching ? { preset: { worker: { localQueue: { size: localQueue }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } } } : {}),
  });
  await finished;
  // Done means completed in the database too: wait for the batched completions to land.
  await withClient(url, async (c) => {
    for (;;) {
      const { rows } = await c.query(`SELECT count(*)::int AS n FROM graphile_worker.jobs`);
      if (rows[0].n === 0) return;
      await new Promise((r) => setTimeout(r, 1));
    }
  });
  const ms = performance.now() - t0;
  const cpu = cpuPerTask(cpu0, cpuNow(), tasks, "postgres");
  await runner.stop();
  await pgPool.end();
  return {
    scenario: "drain",
    database: "postgres (graphile-worker)",
    variant:
      batching === "batched"
        ? `graphile-worker 0.18 batched: concurrency ${concurrency}, localQueue ${localQueue}, completeJobBatchDelay 0`
        : batching === "matched"
          ? `graphile-worker 0.18 matched to ormq's tuned drain: concurrency ${concurrency}, localQueue ${localQueue}, completeJobBatchDelay 0`
          : `graphile-worker 0.18 defaults (concurrency ${concurrency})`,
    tasks,
    tasksPerSecond: rate(tasks, ms),
    ...cpu,
  };
}

/**
 * A pool the bench gives graphile-worker and ends itself. With only a connection string,
 * graphile-worker's own pool could outlive the scenario, and the next scenario's drop of its
 * database (WITH (FORCE): 57P01 on every connection) then ended the whole run on that pool's
 * unhandled error event, seven minutes in.
 */
export function ownedPool(url: string): Pool {
  const pool = new Pool({ connectionString: url });
  pool.on("error", () => {}); // an idle connection the server closed: nothing to do here
  pool.on("connect", (client) => client.on("error", () => {})); // (graphile-worker asks for both)
  return pool;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function quietGraphileLogger(gw: any) {
  return new gw.Logger(() => () => {});
}

export async function plainjob(databases: Databases, tasks: number): Promise<Result> {
  const file = await databases.fresh("sqlite");
  const pj = await import("plainjob");
  const connection = pj.better(new Database(file));
  const queue = pj.defineQueue({ connection, logger: silent });
  for (let i = 0; i < tasks; i += 1_000) queue.addMany("noop", Array.from({ length: Math.min(1_000, tasks - i) }, () => ({})));
  let done = 0;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const worker = pj.defineWorker(
    "noop",
    async () => {
      if (++done === tasks) finish();
    },
    { queue, pollIntervall: 10, logger: silent },
  );
  const cpu0 = cpuNow();
  const t0 = performance.now();
  void worker.start();
  await finished;
  const ms = performance.now() - t0;
  const cpu = cpuPerTask(cpu0, cpuNow(), tasks, "sqlite");
  await worker.stop();
  queue.close();
  return { scenario: "drain", database: "sqlite (plainjob)", variant: "plainjob 0.0.14, one job at a time (its only mode)", tasks, tasksPerSecond: rate(tasks, ms), ...cpu };
}

const silent = { error: () => {}, warn: () => {}, info: () => {}, debug: () => {} };

/** graphile-worker's bulk enqueue: `add_jobs` with `count` jobs, median of three calls after a warm-up. */
export async function graphileEnqueue(databases: Databases, count: number): Promise<Result> {
  const url = await databases.fresh("postgres");
  const gw = await import("graphile-worker");
  const pgPool = ownedPool(url);
  await gw.runMigrations({ pgPool, logger: quietGraphileLogger(gw) });
  const utils = await gw.makeWorkerUtils({ pgPool, logger: quietGraphileLogger(gw) });
  try {
    const specs = (n: number) => Array.from({ length: n }, () => ({ identifier: "noop", payload: {} }));
    await utils.addJobs(specs(1_000));
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const batch = specs(count);
      const t0 = performance.now();
      await utils.addJobs(batch);
      times.push(performance.now() - t0);
    }
    const median = times.sort((a, b) => a - b)[1];
    return { scenario: "enqueue", database: "postgres (graphile-worker)", variant: "addJobs([...]) (add_jobs); after a warm-up call, median of 3 calls", tasks: count, tasksPerSecond: rate(count, median) };
  } finally {
    await utils.release();
    await pgPool.end();
  }
}

/** plainjob's bulk enqueue: `addMany` with `count` jobs, median of three calls after a warm-up. */
export async function plainjobEnqueue(databases: Databases, count: number): Promise<Result> {
  const file = await databases.fresh("sqlite");
  const pj = await import("plainjob");
  const queue = pj.defineQueue({ connection: pj.better(new Database(file)), logger: silent });
  try {
    queue.addMany("noop", Array.from({ length: 1_000 }, () => ({})));
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const batch = Array.from({ length: count }, () => ({}));
      const t0 = performance.now();
      queue.addMany("noop", batch);
      times.push(performance.now() - t0);
    }
    const median = times.sort((a, b) => a - b)[1];
    return { scenario: "enqueue", database: "sqlite (plainjob)", variant: "addMany([...]); after a warm-up call, median of 3 calls", tasks: count, tasksPerSecond: rate(count, median) };
  } finally {
    queue.close();
  }
}
