/**
 * Waiting for results and progress, on both databases, with the worker on another DataSource (as
 * another process would be): success, failure for good, cancel, timeout, abort, a deleted row,
 * a task already finished, many waits at once on one connection, and progress reports (throttled,
 * the last one kept, bad values an error in the task).
 */
import type { DataSource } from "typeorm";
import {
  enqueueMany,
  InvalidOptionError,
  listTasks,
  processForever,
  processN,
  TaskCancelledError,
  TaskFailedError,
  waitForResult,
  waitForResults,
  WaitTimeoutError,
  type TaskProgress,
} from "../../src";
import { AttemptProgress, checkProgress } from "../../src/worker/progress";
import fc from "fast-check";
import { WaitedEphemeral, WaitedTask, waitEntities } from "../fixtures/schedules";
import { testEntities } from "../fixtures/tasks";
import { DIALECTS, memoryLogger, openDataSource, useTestDatabase, type TestDb } from "../support/db";
import { reload, until } from "../support/helpers";

const entities = [...testEntities, ...waitEntities];

/** Binds the entity classes (`Task.create().save()`) to `ds` again: each DataSource opened takes them. */
function bindTo(ds: DataSource): void {
  for (const m of ds.entityMetadatas) (m.target as { useDataSource?: (d: DataSource) => void }).useDataSource?.(ds);
}

describe.each(DIALECTS)("waitForResult on %s", (dialect) => {
  let ds: DataSource;
  let db: TestDb;
  let workerDs: DataSource;
  let stop: AbortController;
  let worker: Promise<unknown>;
  // Declared before the database's own teardown, which checks that nothing was left running.
  afterAll(async () => {
    stop.abort();
    await worker;
    await workerDs.destroy();
  });
  useTestDatabase(dialect, (o) => ((ds = o.ds), (db = o.db)), entities);

  beforeAll(async () => {
    // The worker on a DataSource of its own, as in another process.
    workerDs = await openDataSource(db, entities, {}, false);
    stop = new AbortController();
    bindTo(ds);
    worker = processForever(WaitedTask, { dataSource: workerDs, signal: stop.signal, concurrency: 8, pollIntervalMs: 100, logger: memoryLogger().logger, scheduler: false });
  });
  it("resolves with the result of a task run elsewhere, and at once for a task already finished", async () => {
    const task = await WaitedTask.create({ mode: "return", n: 21 }).save();
    await expect(task.waitForResult()).resolves.toEqual({ id: task.id, result: { n: 21, doubled: 42 }, deleted: false });
    await expect(waitForResult(task.id, { dataSource: ds, timeoutMs: 1_000 })).resolves.toMatchObject({ result: { doubled: 42 } });
  });

  it("rejects with TaskFailedError carrying the last error, and TaskCancelledError for a cancelled task", async () => {
    const failing = await WaitedTask.create({ mode: "fail", n: 7 }).save();
    const err = await failing.waitForResult().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskFailedError);
    expect((err as TaskFailedError).cause).toMatchObject({ name: "RangeError", message: "failed on purpose 7" });
    expect(String(((err as TaskFailedError).cause as Error).stack)).toMatch(/failed on purpose 7/);
    const held = await WaitedTask.create({ mode: "hold" }).save();
    const waiting = held.waitForResult().catch((e: unknown) => e);
    await until("the held task runs", async () => (await reload(ds, held)).status === "running");
    await held.cancel({ reason: "not needed" });
    const cancelled = await waiting;
    expect(cancelled).toBeInstanceOf(TaskCancelledError);
    expect(cancelled).toMatchObject({ taskId: held.id });
  });

  it("times out with WaitTimeoutError, and aborts with the signal's reason; the task goes on", async () => {
    const held = await WaitedTask.create({ mode: "hold" }).save();
    await expect(held.waitForResult({ timeoutMs: 300 })).rejects.toBeInstanceOf(WaitTimeoutError);
    const abort = new AbortController();
    const waiting = held.waitForResult({ signal: abort.signal });
    abort.abort(new Error("the caller gave up"));
    await expect(waiting).rejects.toThrow("the caller gave up");
    WaitedTask.released.add(held.id);
    await expect(held.waitForResult({ timeoutMs: 10_000 })).resolves.toMatchObject({ deleted: false });
  });

  it("a task whose class keeps no succeeded rows resolves as deleted", async () => {
    const task = await WaitedEphemeral.create({}).save();
    const waiting = task.waitForResult({ timeoutMs: 10_000 });
    await processN(WaitedEphemeral, 1, { dataSource: ds, logger: memoryLogger().logger, scheduler: false });
    await expect(waiting).resolves.toEqual({ id: task.id, result: undefined, deleted: true });
  });

  it("1,000 waits at once in one process hold at most one connection, and all resolve", async () => {
    const waiterDs = await openDataSource(db, entities, {}, false);
    bindTo(ds);
    try {
      const ids = await enqueueMany(Array.from({ length: 1000 }, (_, n) => WaitedTask.create({ mode: "return", n })), { dataSource: ds });
      let most = 0;
      const pool = (waiterDs.driver as unknown as { master?: { totalCount: number } }).master;
      const watch = setInterval(() => (most = Math.max(most, pool?.totalCount ?? 0)), 5);
      const results = await waitForResults<{ n: number }>(ids, { dataSource: waiterDs, timeoutMs: 60_000 });
      clearInterval(watch);
      expect(results.map((r) => r.result!.n)).toEqual(ids.map((_, n) => n));
      // PostgreSQL: the waiter DataSource's pool never held more than the one connection the waits share.
      if (dialect === "postgres") expect(most).toBe(1);
    } finally {
      await waiterDs.destroy();
      bindTo(ds);
    }
  }, 60_000);

  it("delivers progress to onProgress, and keeps the last value on the task", async () => {
    const task = await WaitedTask.create({ mode: "hold" }).save();
    const seen: TaskProgress[] = [];
    const waiting = task.waitForResult({ onProgress: (p) => seen.push(p), timeoutMs: 20_000 });
    await until("progress seen", () => seen.length > 0);
    expect(seen[0]).toEqual({ id: task.id, fraction: 0.5, message: "half way" });
    WaitedTask.released.add(task.id);
    await waiting;
    const many = await WaitedTask.create({ mode: "progress", n: 1 }).save();
    await many.waitForResult({ timeoutMs: 20_000 });
    expect(await reload(ds, many)).toMatchObject({ progress: 0.9, progressMessage: "almost" });
    const listed = (await listTasks({ dataSource: ds, type: "waited_task", limit: 10_000 })).find((t) => t.id === many.id);
    expect(listed).toMatchObject({ progress: 0.9, progressMessage: "almost" });
  });

  it("a progress value out of range is an error in the task, not a failed write", async () => {
    const task = await WaitedTask.create({ mode: "bad_progress" }).save();
    const err = await task.waitForResult({ timeoutMs: 20_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskFailedError);
    expect(((err as TaskFailedError).cause as Error).message).toMatch(/ctx\.progress\(fraction\): expected a number from 0 to 1, got 1\.5/);
  });

  it("refuses a bad id or timeout with one clear error", async () => {
    await expect(waitForResult("not-an-id", { dataSource: ds })).rejects.toThrow(/expected a task id/);
    await expect(waitForResult("1", { dataSource: ds, timeoutMs: -1 })).rejects.toBeInstanceOf(InvalidOptionError);
  });
});

describe("progress reports", () => {
  it("are written at most once a second, and the last one always at the end", async () => {
    const writes: unknown[] = [];
    const progress = new AttemptProgress(async (r) => void writes.push(r), () => undefined);
    for (let i = 1; i <= 100; i++) await progress.report(i / 100, `${i}`);
    expect(writes).toEqual([{ fraction: 0.01, message: "1" }]);
    await progress.flush();
    expect(writes).toEqual([{ fraction: 0.01, message: "1" }, { fraction: 1, message: "100" }]);
    await progress.flush(); // nothing new
    expect(writes).toHaveLength(2);
  });

  it("any value is a report or one InvalidOptionError", () => {
    fc.assert(
      fc.property(fc.anything(), fc.oneof(fc.string({ maxLength: 300 }), fc.anything()), (fraction, message) => {
        try {
          const r = checkProgress(fraction, message);
          expect(r.fraction >= 0 && r.fraction <= 1).toBe(true);
          expect(r.message === null || (r.message.length <= 200 && !r.message.includes("\u0000"))).toBe(true);
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidOptionError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
