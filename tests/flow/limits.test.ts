/**
 * Concurrency limits and pausing across workers, on both databases: workers on separate
 * DataSources (as separate processes would be) drain tasks under a per-key class limit and a
 * queue limit, and never run more at once than the limit allows; a paused queue or type is not
 * claimed, and buffered tasks of one go back.
 */
import type { DataSource } from "typeorm";
import { enqueueMany, processForever, processN } from "../../src";
import { getReadiness, getStats, listControls, pauseQueue, pauseType, resumeQueue, resumeType, setQueueLimits } from "../../src/admin";
import { LimitedAccount, maxOverlap, RatedTask, SpanTask } from "../fixtures/flow";
import { GateTask, testEntities } from "../fixtures/tasks";
import { WITH_MARIADB, memoryLogger, openDataSource, useTestDatabase, type TestDb } from "../support/db";
import { until } from "../support/helpers";

describe.each(WITH_MARIADB)("flow controls on %s", (dialect) => {
  let ds: DataSource;
  let db: TestDb;
  useTestDatabase(dialect, (o) => ((ds = o.ds), (db = o.db)), testEntities);
  const quiet = () => memoryLogger().logger;

  it("three workers at concurrency 20 never run more than 2 per key, and drain 300 tasks over 15 keys", async () => {
    LimitedAccount.spans = [];
    await enqueueMany(
      Array.from({ length: 300 }, (_, i) => LimitedAccount.create({ accountId: `acc${i % 15}` })),
      { dataSource: ds },
    );
    const others = [await openDataSource(db, testEntities), await openDataSource(db, testEntities)];
    try {
      const summaries = await Promise.all(
        [ds, ...others].map((source) => processN(LimitedAccount, 300, { dataSource: source, concurrency: 20, pollIntervalMs: 50, logger: quiet() })),
      );
      // processN stops when nothing is ready; tasks a limit held back are picked up by another round.
      let done = summaries.reduce((n, s) => n + s.succeeded, 0);
      for (let round = 0; done < 300 && round < 20; round++) {
        done += (await processN(LimitedAccount, 300, { dataSource: ds, concurrency: 20, pollIntervalMs: 50, logger: quiet() })).succeeded;
      }
    } finally {
      for (const o of others) await o.destroy();
    }
    expect(LimitedAccount.spans).toHaveLength(300);
    const overlaps = Array.from({ length: 15 }, (_, k) => maxOverlap(LimitedAccount.spans, `acc${k}`));
    // Never over the limit; and the limit is used, not one at a time (whether a given key ever had
    // two at once depends on the machine's timing: under load one key may not).
    expect(Math.max(...overlaps)).toBe(2);
    expect(overlaps.filter((n) => n === 2).length).toBeGreaterThanOrEqual(8);
  });

  it("a queue limit set at run time holds across workers; removing it lifts it", async () => {
    SpanTask.spans = [];
    await setQueueLimits("spans", { concurrency: 3 }, { dataSource: ds });
    expect(await listControls({ dataSource: ds })).toEqual([expect.objectContaining({ scope: "queue", name: "spans", paused: false, concurrency: 3 })]);
    await enqueueMany(Array.from({ length: 60 }, () => SpanTask.create({})), { dataSource: ds });
    const other = await openDataSource(db, testEntities);
    try {
      let done = 0;
      for (let round = 0; done < 60 && round < 20; round++) {
        const runs = await Promise.all(
          [ds, other].map((source) => processN(SpanTask, 60, { dataSource: source, concurrency: 10, pollIntervalMs: 50, logger: quiet() })),
        );
        done += runs.reduce((n, s) => n + s.succeeded, 0);
      }
    } finally {
      await other.destroy();
    }
    expect(SpanTask.spans).toHaveLength(60);
    expect(maxOverlap(SpanTask.spans, "spans")).toBe(3);
    await setQueueLimits("spans", { concurrency: null }, { dataSource: ds });
    expect(await listControls({ dataSource: ds })).toEqual([]);
  });

  it("a rate limit holds across three workers: no second holds more than 20 claims, and the drain goes on", async () => {
    await enqueueMany(Array.from({ length: 60 }, () => RatedTask.create({})), { dataSource: ds });
    const sources = [ds, await openDataSource(db, testEntities), await openDataSource(db, testEntities)];
    const controller = new AbortController();
    const workers = sources.map((source) =>
      processForever(RatedTask, { dataSource: source, concurrency: 20, pollIntervalMs: 100, signal: controller.signal, logger: quiet() }),
    );
    try {
      await until("all 60 ran", async () => (await ds.getRepository(RatedTask).countBy({ status: "succeeded" })) === 60, 30_000);
    } finally {
      controller.abort();
      await Promise.all(workers);
      for (const source of sources.slice(1)) await source.destroy();
    }
    const claims = (await ds.getRepository(RatedTask).find()).map((t) => t.startedAt!.getTime()).sort((a, b) => a - b);
    expect(claims).toHaveLength(60);
    const busiest = Math.max(...claims.map((at, i) => claims.filter((other, j) => j >= i && other - at < 1_000).length));
    expect(busiest).toBe(20);
    // The waiting tasks went as soon as the window let them: by the database's own claim times,
    // the 60 claims span about 2 s (three windows). A limiter that held a task back for a whole
    // window, or let one through at a time, would span 30 s or more; the bound leaves a loaded
    // machine five times the expected span.
    expect(claims[59] - claims[0]).toBeLessThan(10_000);
  });

  it("a queue's rate limit: a drain takes what the window allows and the rest is not ready", async () => {
    await setQueueLimits("spans", { rate: { max: 5, perMs: 60_000 } }, { dataSource: ds });
    try {
      await enqueueMany(Array.from({ length: 8 }, () => SpanTask.create({})), { dataSource: ds });
      expect((await processN(SpanTask, 8, { dataSource: ds, pollIntervalMs: 50, logger: quiet() })).succeeded).toBe(5);
      expect(await ds.getRepository(SpanTask).countBy({ status: "pending", attempts: 0 })).toBe(3);
    } finally {
      await setQueueLimits("spans", { rate: null }, { dataSource: ds });
    }
    expect((await processN(SpanTask, 8, { dataSource: ds, pollIntervalMs: 50, logger: quiet() })).succeeded).toBe(3);
  });

  it("getStats shows what the classes declare beside what was set at run time", async () => {
    const { classControls } = await getStats({ dataSource: ds });
    expect(classControls.find((c) => c.type === "limited_account")).toEqual({ type: "limited_account", unique: null, concurrency: { max: 2, by: "accountId" }, rate: null });
    expect(classControls.find((c) => c.type === "rated_task")).toEqual({ type: "rated_task", unique: null, concurrency: null, rate: { max: 20, perMs: 1_000, by: null } });
    expect(classControls.find((c) => c.type === "span_task")).toBeUndefined(); // declares none
  });

  it("bad limits are one clear error", async () => {
    await expect(setQueueLimits("spans", { rate: { max: 0, perMs: 1000 } }, { dataSource: ds })).rejects.toThrow(/rate.max must be/);
    await expect(setQueueLimits("spans", { rate: { max: 5, perMs: -1 } }, { dataSource: ds })).rejects.toThrow(/rate.perMs must be/);
    await expect(setQueueLimits("spans", { concurrency: 0 }, { dataSource: ds })).rejects.toThrow(/concurrency must be an integer from 1/);
    await expect(setQueueLimits("spans", { concurrency: 2.5 }, { dataSource: ds })).rejects.toThrow(/concurrency must be/);
    await expect(setQueueLimits("spans", { burst: 1 } as never, { dataSource: ds })).rejects.toThrow(/unknown limit "burst"/);
    await expect(setQueueLimits("", { concurrency: 1 }, { dataSource: ds })).rejects.toThrow(/queue/);
  });

  it("a paused queue or type is not ready: processN does not wait for it; resumed, it runs", async () => {
    SpanTask.spans = [];
    // Nor do the readiness figures (the ready metric) and getStats' oldest ready task count it.
    const readySpans = async () => ({
      ready: (await getReadiness({ dataSource: ds })).queues.find((q) => q.queue === "spans")?.ready ?? 0,
      oldest: (await getStats({ dataSource: ds })).oldestReadyAgeMs,
    });
    await pauseQueue("spans", { dataSource: ds });
    await enqueueMany(Array.from({ length: 5 }, () => SpanTask.create({})), { dataSource: ds });
    // Its summary says how many ready tasks it left behind for that reason.
    expect(await processN(SpanTask, 5, { dataSource: ds, pollIntervalMs: 50, logger: quiet() })).toMatchObject({ processed: 0, heldBack: 5 });
    expect(await readySpans()).toEqual({ ready: 0, oldest: null });
    await resumeQueue("spans", { dataSource: ds });
    await pauseType("span_task", { dataSource: ds });
    expect(await processN(SpanTask, 5, { dataSource: ds, pollIntervalMs: 50, logger: quiet() })).toMatchObject({ processed: 0, heldBack: 5 });
    expect(await readySpans()).toEqual({ ready: 0, oldest: null });
    expect((await getReadiness({ dataSource: ds })).pausedTypes).toEqual(["span_task"]);
    await resumeType("span_task", { dataSource: ds });
    expect(await readySpans()).toMatchObject({ ready: 5, oldest: expect.any(Number) });
    expect(await processN(SpanTask, 5, { dataSource: ds, pollIntervalMs: 50, logger: quiet() })).toMatchObject({ succeeded: 5, heldBack: 0 });
  });

  it("a queue limit changed while a worker runs: raised, more start within about a second; lowered, none is stopped", async () => {
    GateTask.reset();
    await setQueueLimits("gates", { concurrency: 2 }, { dataSource: ds });
    await enqueueMany(Array.from({ length: 6 }, () => GateTask.create({}).onQueue("gates")), { dataSource: ds });
    const running = () => ds.getRepository(GateTask).countBy({ status: "running" });
    const controller = new AbortController();
    const worker = processForever(GateTask, { dataSource: ds, concurrency: 10, pollIntervalMs: 50, signal: controller.signal, logger: quiet() });
    try {
      await until("two running", async () => GateTask.started.length === 2);
      // A claimed task counts against the limit: none is held in a buffer beyond it.
      expect(await running()).toBe(2);
      await setQueueLimits("gates", { concurrency: 5 }, { dataSource: ds });
      await until("five running", async () => GateTask.started.length === 5, 3_000);
      await setQueueLimits("gates", { concurrency: 1 }, { dataSource: ds });
      GateTask.release!();
      await until("all six done", async () => (await ds.getRepository(GateTask).countBy({ status: "succeeded" })) === 6);
    } finally {
      controller.abort();
      await worker;
      await setQueueLimits("gates", { concurrency: null }, { dataSource: ds });
    }
    // Lowering the limit to 1 under five running tasks aborted none of them.
    expect(GateTask.abortReasons).toEqual([]);
    expect(GateTask.started).toHaveLength(6);
    await ds.getRepository(GateTask).delete({ queue: "gates" }); // the next test counts gate tasks
  });

  it("pausing hands back what a running worker holds in its buffer; running tasks finish", async () => {
    GateTask.reset();
    await enqueueMany(Array.from({ length: 6 }, () => GateTask.create({})), { dataSource: ds });
    const controller = new AbortController();
    const worker = processForever(GateTask, { dataSource: ds, concurrency: 1, prefetch: 5, pollIntervalMs: 50, signal: controller.signal, logger: quiet() });
    try {
      await until("one running and the rest buffered", async () => GateTask.started.length === 1 && (await ds.getRepository(GateTask).countBy({ status: "running" })) === 6);
      await pauseQueue("default", { dataSource: ds });
      await until("the buffered tasks handed back", async () => (await ds.getRepository(GateTask).countBy({ status: "pending", attempts: 0 })) === 5);
      GateTask.release!();
      await until("the running one finished", async () => (await ds.getRepository(GateTask).countBy({ status: "succeeded" })) === 1);
    } finally {
      controller.abort();
      await worker;
      await resumeQueue("default", { dataSource: ds });
    }
    expect(GateTask.started).toHaveLength(1);
  });
});
