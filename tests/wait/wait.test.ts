/**
 * Waiting for results and progress, on both databases, with the worker on another DataSource (as
 * another process would be): success, failure for good, cancel, timeout, abort, a deleted row,
 * a task already finished, many waits at once on one connection, and progress reports (throttled,
 * the last one kept, bad values an error in the task). Ids no task can have are refused at the
 * call; a read that fails on one id rejects that wait alone; the first read comes before any
 * timeout; and a script's wait keeps its process alive.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { DataSource } from "typeorm";
import {
  enqueueMany,
  InvalidOptionError,
  OrmqError,
  processForever,
  processN,
  TaskCancelledError,
  TaskFailedError,
  waitForResult,
  waitForResults,
  WaitTimeoutError,
  type TaskProgress,
} from "../../src";
import { listTasks } from "../../src/admin";
import { ormqFor } from "../../src/client/client";
import { AttemptProgress, checkProgress } from "../../src/worker/progress";
import fc from "fast-check";
import { WaitedEphemeral, WaitedTask, waitEntities } from "../fixtures/schedules";
import { testEntities } from "../fixtures/tasks";
import { WITH_MARIADB, memoryLogger, openDataSource, useTestDatabase, type TestDb } from "../support/db";
import { reload, until } from "../support/helpers";
import { trackChild } from "../support/leaks";

/** The compiled script a wait-keeps-the-process-alive test runs (`npm run build` makes it). */
const WAIT_SCRIPT = join(__dirname, "..", "..", "dist", "tests", "fixtures", "wait-process.js");

const entities = [...testEntities, ...waitEntities];

/** Binds the entity classes (`Task.create().save()`) to `ds` again: each DataSource opened takes them. */
function bindTo(ds: DataSource): void {
  for (const m of ds.entityMetadatas) (m.target as { useDataSource?: (d: DataSource) => void }).useDataSource?.(ds);
}

describe.each(WITH_MARIADB)("waitForResult on %s", (dialect) => {
  let ds: DataSource;
  let db: TestDb;
  let workerDs: DataSource;
  let stop: AbortController;
  let worker: Promise<unknown>;
  // Ids start again at 1 in each database: an id released under the last one must not let this
  // one's task of the same id run on without waiting.
  beforeAll(() => WaitedTask.released.clear());
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
    await expect(waitForResult("not-an-id", { dataSource: ds })).rejects.toThrow(/waitForResult\(id\) must be a positive 64-bit integer.*"not-an-id"/);
    await expect(waitForResult("1", { dataSource: ds, timeoutMs: -1 })).rejects.toBeInstanceOf(InvalidOptionError);
  });

  it("refuses an id no task can have (0, past 2^63-1, an unsafe number) at the call, naming it", async () => {
    // Before: "0" resolved as deleted on both databases, and past 2^63-1 PostgreSQL failed the
    // whole poll (a bigint overflow), so the wait hung and starved the waits beside it.
    for (const id of ["0", "9999999999999999999", "9223372036854775808", "00", 0, -1, 1.5, 2 ** 53, "", " 1", "1e3"]) {
      const err = await waitForResult(id, { dataSource: ds, timeoutMs: 1_000 }).then(
        (r) => r,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(InvalidOptionError);
      expect((err as Error).message).toContain(typeof id === "string" ? JSON.stringify(id) : String(id));
    }
    // The bounds themselves are ids; leading zeros name the same task.
    await expect(waitForResult("9223372036854775807", { dataSource: ds, timeoutMs: 10_000 })).resolves.toEqual({ id: "9223372036854775807", result: undefined, deleted: true });
    const task = await WaitedTask.create({ mode: "return", n: 3 }).save();
    await task.waitForResult({ timeoutMs: 10_000 });
    await expect(waitForResult(`00${task.id}`, { dataSource: ds, timeoutMs: 10_000 })).resolves.toEqual({ id: task.id, result: { n: 3, doubled: 6 }, deleted: false });
  });

  it("a read that fails on one id rejects that wait alone, naming the id; the waits beside it resolve", async () => {
    // PostgreSQL fails the whole read on an id its bigint cannot hold (SQLite matches nothing: no
    // id fails a read there). The public call refuses such an id: this goes past the check.
    if (dialect !== "postgres") return;
    const waiterDs = await openDataSource(db, entities, {}, false);
    bindTo(ds);
    const { logger, lines } = memoryLogger();
    let heldId: string | undefined;
    try {
      const done = await WaitedTask.create({ mode: "return", n: 11 }).save();
      await done.waitForResult({ timeoutMs: 10_000 });
      const held = await WaitedTask.create({ mode: "hold", n: 12 }).save();
      heldId = held.id;
      const waiter = ormqFor(waiterDs).waiter;
      waiter.logger = logger;
      // All in one turn: one read for the three ids, as waitForResults makes it.
      const bad = waiter.wait("99999999999999999999", { timeoutMs: 30_000 }).catch((e: unknown) => e);
      const good = waitForResult(done.id, { dataSource: waiterDs, timeoutMs: 10_000 });
      const later = waitForResult(held.id, { dataSource: waiterDs, timeoutMs: 30_000 });
      await expect(good).resolves.toEqual({ id: done.id, result: { n: 11, doubled: 22 }, deleted: false });
      const err = await bad;
      expect(err).not.toBeInstanceOf(WaitTimeoutError);
      expect(err).toBeInstanceOf(OrmqError);
      expect((err as Error).message).toMatch(/task 99999999999999999999's outcome cannot be read/);
      expect(lines).toContainEqual(expect.objectContaining({ level: "warn", obj: expect.objectContaining({ taskId: "99999999999999999999" }) }));
      // The other waits go on polling.
      WaitedTask.released.add(held.id);
      await expect(later).resolves.toEqual({ id: held.id, result: { n: 12 }, deleted: false });
    } finally {
      if (heldId) WaitedTask.released.add(heldId);
      await waiterDs.destroy();
      bindTo(ds);
    }
  });

  it("timeoutMs: 0 on a task already finished resolves: the first read comes before any timeout", async () => {
    const tasks = await Promise.all([1, 2, 3].map((n) => WaitedTask.create({ mode: "return", n }).save()));
    await waitForResults(tasks.map((t) => t.id), { dataSource: ds, timeoutMs: 10_000 });
    const held = await WaitedTask.create({ mode: "hold" }).save();
    // A waiter of its own, so its first read starts from a setImmediate, not from a loop already
    // running. Made from a setImmediate callback, then the event loop held 5 ms: the zero-delay
    // timers are due at the next timers phase, which comes before the check phase of the read.
    const waiterDs = await openDataSource(db, entities, {}, false);
    bindTo(ds);
    try {
      await new Promise((resolve) => setImmediate(resolve));
      const waiting = waitForResults(tasks.map((t) => t.id), { dataSource: waiterDs, timeoutMs: 0 });
      const pending = waitForResult(held.id, { dataSource: waiterDs, timeoutMs: 0 }).catch((e: unknown) => e);
      const heldUntil = Date.now() + 5;
      while (Date.now() < heldUntil); // the loop held on purpose (see above)
      await expect(waiting).resolves.toEqual(tasks.map((t) => ({ id: t.id, result: { n: t.n, doubled: t.n * 2 }, deleted: false })));
      // A task still running times out after that first read.
      expect(await pending).toBeInstanceOf(WaitTimeoutError);
    } finally {
      WaitedTask.released.add(held.id);
      await waiterDs.destroy();
      bindTo(ds);
    }
  });

  it("a script's wait with no timeout keeps its process alive until the task finishes", async () => {
    // Before, on SQLite, the poll timer was unref()'d and nothing else held the process: the
    // script exited with code 0 at once, printing no result.
    if (!existsSync(WAIT_SCRIPT)) throw new Error(`${WAIT_SCRIPT} is missing: run \`npm run build\` first (npm test does)`);
    const child = trackChild(
      spawn(process.execPath, [WAIT_SCRIPT], { env: { ...process.env, ORMQ_DATABASE_URL: db.url, ORMQ_TEST_N: "77", ORMQ_LOG_LEVEL: "warn" }, stdio: ["ignore", "pipe", "pipe"] }),
    );
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    const lines: string[] = [];
    createInterface({ input: child.stdout! }).on("line", (line) => lines.push(line));
    const exited = new Promise<{ code: number | null; at: number }>((resolve) => child.on("exit", (code) => resolve({ code, at: Date.now() })));
    let gone = false;
    void exited.then(() => (gone = true));
    await until("the script saved its task", () => lines.some((l) => l.startsWith("saved ")) || gone);
    const saved = lines.find((l) => l.startsWith("saved "));
    expect(saved).toBeDefined();
    const id = saved!.slice("saved ".length);
    // The test's worker holds the task running until it is released here.
    await until("the worker runs the script's task", async () => (await reload(ds, { id })).status === "running" || gone);
    const releasedAt = Date.now();
    WaitedTask.released.add(id);
    const { code, at } = await exited;
    expect({ code, stderr, lines }).toEqual({ code: 0, stderr: "", lines: [`saved ${id}`, JSON.stringify({ id, result: { n: 77 }, deleted: false })] });
    expect(at).toBeGreaterThanOrEqual(releasedAt);
  }, 30_000);
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
