import { setTimeout as sleep } from "node:timers/promises";
import { ChildEntity, type DataSource } from "typeorm";
import { BaseTaskEntity, enqueueMany, ormqFor, processForever, processN, type ProcessSummary, type TaskContext } from "../src";
import { AUTO_MAX_HELD, PrefetchGauge } from "../src/worker/prefetchGauge";
import { testEntities } from "./fixtures/tasks";
import { WITH_MARIADB, memoryLogger, useTestDatabase } from "./support/db";
import { until } from "./support/helpers";

/** Half a second of work. */
@ChildEntity("fair_share")
class FairShare extends BaseTaskEntity {
  async run(ctx: TaskContext) {
    await sleep(500, undefined, { signal: ctx.signal });
  }
}

/** No work at all. */
@ChildEntity("no_work")
class NoWork extends BaseTaskEntity {
  async run() {}
}

/**
 * The sizes of the claims a drain made: a claim starts its tasks' attempts at one time, which each
 * attempt's outcome row records with its worker, so each (worker, start) group is one claim (or,
 * rarely, two in the same ms: a group may be larger than any claim, never smaller).
 */
async function claimSizes(ds: DataSource, type: string): Promise<number[]> {
  const rows = (await ds.query(
    `SELECT COUNT(*) AS n FROM ormq_task_events e JOIN ormq_tasks t ON t.id = e.task_id
     WHERE e.started_at IS NOT NULL AND t.type = '${type}' GROUP BY e.worker, e.started_at`,
  )) as { n: unknown }[];
  return rows.map((r) => Number(r.n));
}

describe("the automatic claim-ahead buffer (prefetch: \"auto\", the default)", () => {
  it("claims nothing ahead until a run and a claim after the first have been seen", () => {
    const gauge = new PrefetchGauge("auto", 10);
    expect(gauge.buffer()).toBe(0);
    gauge.claimedIn(2);
    expect(gauge.buffer()).toBe(0);
    gauge.ranFor(0.05);
    expect(gauge.buffer()).toBe(0);
    gauge.claimedIn(2);
    expect(gauge.buffer()).toBe(AUTO_MAX_HELD - 10);
  });

  it("gives tasks far longer than a claim no buffer, and sizes it for tasks near a claim's length", () => {
    const long = new PrefetchGauge("auto", 2);
    long.claimedIn(2);
    long.claimedIn(2);
    for (let i = 0; i < 50; i++) long.ranFor(500);
    expect(long.buffer()).toBe(0);
    const short = new PrefetchGauge("auto", 10);
    short.claimedIn(2);
    short.claimedIn(2);
    short.ranFor(4); // 10 slots through 2.5 tasks a ms... for two claims of 2 ms: 10 tasks
    expect(short.buffer()).toBe(10);
  });

  it("a worker's slow first claim, or one slow claim later, gives long tasks no buffer; claims slow every time do", () => {
    // A worker's first claim on a loaded machine took 134 ms, the rest 1-8 ms: a mean seeded by
    // the first held a task of half a second ahead while another worker sat idle.
    const gauge = new PrefetchGauge("auto", 2);
    for (const ms of [134, 5.4, 1.1, 8.0, 1.0, 0.8]) {
      gauge.claimedIn(ms);
      gauge.ranFor(500);
      expect(gauge.buffer()).toBe(0);
    }
    // One slow claim later moves the mean a fifth of the way.
    gauge.claimedIn(300);
    expect(gauge.buffer()).toBe(0);
    for (let i = 0; i < 5; i++) gauge.claimedIn(2);
    expect(gauge.buffer()).toBe(0);
    // Claims of 200 ms every time: two slots get through 1.6 tasks in two claims, so one is held.
    for (let i = 0; i < 30; i++) gauge.claimedIn(200);
    expect(gauge.buffer()).toBe(1);
  });

  it("holds only whole tasks: slots expected to finish half of one during two claims hold none", () => {
    const gauge = new PrefetchGauge("auto", 2);
    gauge.claimedIn(70);
    gauge.claimedIn(70);
    gauge.ranFor(500); // 2 / 500 * 70 * 2 = 0.56 of a task
    expect(gauge.buffer()).toBe(0);
  });

  it("follows a change of the tasks' length", () => {
    const gauge = new PrefetchGauge("auto", 10);
    gauge.claimedIn(1);
    gauge.claimedIn(1);
    gauge.ranFor(0.1);
    expect(gauge.buffer()).toBe(200);
    for (let i = 0; i < 200; i++) gauge.ranFor(1_000);
    expect(gauge.buffer()).toBe(0);
  });

  it("a fixed prefetch is kept whatever is observed, and the buffer never passes its bound", () => {
    const fixed = new PrefetchGauge(7, 10);
    fixed.claimedIn(100);
    fixed.claimedIn(100);
    fixed.ranFor(0);
    expect(fixed.buffer()).toBe(7);
    const big = new PrefetchGauge("auto", 600);
    big.claimedIn(100);
    big.claimedIn(100);
    big.ranFor(0);
    expect(big.buffer()).toBe(0);
  });
});

describe.each(WITH_MARIADB)("the automatic claim-ahead buffer on %s", (dialect) => {
  let ds: DataSource;
  useTestDatabase(dialect, (opened) => ({ ds } = opened), [...testEntities, FairShare, NoWork]);
  beforeEach(async () => {
    await ds.query(`DELETE FROM ormq_tasks`);
    await ds.query(`DELETE FROM ormq_task_events`);
    await ds.query(`DELETE FROM test_runs`);
  });

  it("two workers at concurrency 2 share 20 tasks of 500 ms fairly: none holds a task it has no slot for", async () => {
    await ds.getRepository(FairShare).save(Array.from({ length: 20 }, () => FairShare.create({})));
    // What each worker holds, claimed and not yet returned from run(): a claim counts its tasks
    // in, run() returning counts one out (before its slot frees, so this never counts a task the
    // worker no longer holds). More than the two slots means a task waited in a buffer.
    const client = ormqFor(ds);
    const holding = new Map<string, number>();
    let most = 0;
    const offClaimed = client.on("task:claimed", ({ workerId }) => {
      const n = (holding.get(workerId) ?? 0) + 1;
      holding.set(workerId, n);
      most = Math.max(most, n);
    });
    const removeCount = client.use({
      async run(_task, ctx, next) {
        try {
          return await next();
        } finally {
          holding.set(ctx.workerId, (holding.get(ctx.workerId) ?? 0) - 1);
        }
      },
    });
    const controllers = [new AbortController(), new AbortController()];
    const workers: Promise<ProcessSummary>[] = controllers.map((c) =>
      processForever(FairShare, { dataSource: ds, concurrency: 2, signal: c.signal, logger: memoryLogger().logger }),
    );
    try {
      await until("all 20 succeeded", async () => Number((await ds.query(`SELECT COUNT(*) AS n FROM ormq_tasks WHERE status = 'succeeded'`))[0].n) === 20, 20_000);
    } finally {
      for (const c of controllers) c.abort();
    }
    const summaries = await Promise.all(workers);
    offClaimed();
    removeCount();
    expect(summaries.map((s) => s.succeeded).reduce((a, b) => a + b)).toBe(20);
    for (const s of summaries) {
      expect(s.succeeded).toBeGreaterThanOrEqual(8);
      expect(s.succeeded).toBeLessThanOrEqual(12);
    }
    expect(holding.size).toBe(2);
    expect([...holding.values()]).toEqual([0, 0]);
    expect(most).toBe(2);
  });

  it("claims tasks that do nothing well ahead of its slots at the defaults", async () => {
    await enqueueMany(Array.from({ length: 2_000 }, () => NoWork.create({})), { dataSource: ds });
    const summary = await processN(NoWork, 2_000, { dataSource: ds, logger: memoryLogger().logger });
    expect(summary).toMatchObject({ succeeded: 2_000 });
    // The first claim knows nothing and takes the 10 slots' worth; later ones take far more.
    const sizes = await claimSizes(ds, "no_work");
    expect(sizes.reduce((a, b) => a + b)).toBe(2_000);
    expect(Math.max(...sizes)).toBeGreaterThan(100);
  });
});
