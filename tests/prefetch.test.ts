import type { DataSource } from "typeorm";
import { BaseTaskEntity, enqueueMany, processForever, processN, type ProcessSummary } from "../src";
import { cancelTask } from "../src/admin";
import { createDialect, type Completion } from "../src/dialect";
import { Completer } from "../src/worker/completer";
import { EphemeralTask, GateTask, RecordRun, RunLog, testEntities } from "./fixtures/tasks";
import { WITH_MARIADB, memoryLogger, useTestDatabase } from "./support/db";
import { until } from "./support/helpers";

/** Buffered (prefetched) tasks, slots that free before the outcome is written, and group completion. */
describe.each(WITH_MARIADB)("prefetch and group completion on %s", (dialect) => {
  let ds: DataSource;
  useTestDatabase(dialect, (opened) => ({ ds } = opened), testEntities);
  beforeEach(async () => {
    await ds.query(`DELETE FROM ormq_tasks`);
    await ds.query(`DELETE FROM ormq_task_events`); // no foreign key cascades them
    await ds.query(`DELETE FROM test_runs`);
    GateTask.reset();
  });

  function startWorker(cls: typeof BaseTaskEntity, options: Record<string, unknown>) {
    const controller = new AbortController();
    const log = memoryLogger();
    const done: Promise<ProcessSummary> = processForever(cls, { dataSource: ds, logger: log.logger, signal: controller.signal, ...options });
    return { done, log, stop: () => (controller.abort(), done) };
  }

  const rows = async () =>
    (await ds.query(`SELECT id, status, attempts, locked_by, locked_until FROM ormq_tasks ORDER BY id`)) as {
      id: unknown;
      status: string;
      attempts: number;
      locked_by: string | null;
      locked_until: unknown;
    }[];

  it("hands buffered tasks back at shutdown without using an attempt", async () => {
    await ds.getRepository(GateTask).save(Array.from({ length: 5 }, () => GateTask.create({})));
    const worker = startWorker(GateTask, { concurrency: 1, prefetch: 3 });
    await until("one running, three buffered", async () => GateTask.started.length === 1 && (await rows()).filter((r) => r.status === "running").length === 4);
    const stopped = worker.stop();
    GateTask.release!();
    expect(await stopped).toMatchObject({ succeeded: 1, processed: 1 });
    const after = await rows();
    expect(after.filter((r) => r.status === "succeeded").map((r) => String(r.id))).toEqual(GateTask.started);
    const back = after.filter((r) => r.status === "pending");
    expect(back).toHaveLength(4);
    for (const r of back) expect(r).toMatchObject({ attempts: 0, locked_by: null });
    const events = (await ds.query(`SELECT kind FROM ormq_task_events WHERE kind = 'handed_back'`)) as unknown[];
    expect(events).toHaveLength(3);
  });

  it("renews the lease of buffered tasks with its heartbeat", async () => {
    await ds.getRepository(GateTask).save(Array.from({ length: 3 }, () => GateTask.create({})));
    const worker = startWorker(GateTask, { concurrency: 1, prefetch: 2, leaseMs: 2_000, heartbeatIntervalMs: 100 });
    try {
      await until("one running, two buffered", async () => GateTask.started.length === 1 && (await rows()).filter((r) => r.status === "running").length === 3);
      const buffered = (await rows()).filter((r) => r.status === "running" && !GateTask.started.includes(String(r.id)));
      expect(buffered).toHaveLength(2);
      const first = new Map(buffered.map((r) => [String(r.id), Number(r.locked_until)]));
      await until("buffered leases renewed", async () =>
        (await rows()).filter((r) => first.has(String(r.id)) && Number(r.locked_until) > first.get(String(r.id))!).length === 2,
      );
    } finally {
      GateTask.release!();
      await worker.stop();
    }
  });

  it("a cancel request wins over a buffered task: it ends cancelled without running", async () => {
    const tasks = await ds.getRepository(GateTask).save(Array.from({ length: 2 }, () => GateTask.create({})));
    const worker = startWorker(GateTask, { concurrency: 1, prefetch: 1 });
    try {
      await until("one running, one buffered", async () => GateTask.started.length === 1 && (await rows()).filter((r) => r.status === "running").length === 2);
      const waiting = tasks.find((t) => !GateTask.started.includes(t.id))!;
      await cancelTask(waiting.id, { dataSource: ds });
      await until("buffered task cancelled", async () => (await rows()).some((r) => String(r.id) === waiting.id && r.status === "cancelled"));
      expect(GateTask.started).not.toContain(waiting.id);
    } finally {
      GateTask.release!();
      await worker.stop();
    }
  });

  it("processN claims exactly n with a buffer", async () => {
    await ds.getRepository(RecordRun).save(Array.from({ length: 20 }, () => RecordRun.create({})));
    const summary = await processN(RecordRun, 7, { dataSource: ds, concurrency: 2, prefetch: 5, logger: memoryLogger().logger });
    expect(summary).toMatchObject({ succeeded: 7, processed: 7 });
    expect(await ds.getRepository(RunLog).count()).toBe(7);
    const after = await rows();
    expect(after.filter((r) => r.status === "pending" && r.attempts === 0)).toHaveLength(13);
  });

  it("a buffer larger than the bound on unwritten outcomes still claims (it waited for room that never came)", async () => {
    // More than the 1,000 outcomes a worker leaves unwritten: with fewer, processN's remainder
    // lowered the threshold and hid the hang.
    await enqueueMany(Array.from({ length: 1_200 }, () => EphemeralTask.create({})), { dataSource: ds });
    // A deadline turns the old hang into a failed expectation rather than a test timeout.
    const summary = await processN(EphemeralTask, 1_200, { dataSource: ds, concurrency: 10, prefetch: 2_000, logger: memoryLogger().logger, signal: AbortSignal.timeout(20_000) });
    expect(summary).toMatchObject({ succeeded: 1_200, processed: 1_200 });
    expect(await ds.getRepository(EphemeralTask).count()).toBe(0);
  });

  it("many outcomes at once (written by two writers on PostgreSQL): each task keeps its first outcome, once", async () => {
    await ds.getRepository(RecordRun).save(Array.from({ length: 600 }, () => RecordRun.create({})), { chunk: 200 });
    const { logger } = memoryLogger();
    const worker = createDialect(ds, "test-worker", logger);
    try {
      const claimed = await worker.claim({ types: ["record_run"], queues: null, limit: 600, leaseMs: 60_000 });
      expect(claimed).toHaveLength(600);
      const completer = new Completer(worker, logger, 100);
      const ids = claimed.map((r) => String(r.id));
      // All submitted in one tick, enough for a second writer; every tenth task gets a second,
      // conflicting outcome after its first.
      const firsts = ids.map((id) => completer.submit(completion(id, "succeeded")));
      const seconds = ids.filter((_, i) => i % 10 === 0).map((id) => completer.submit(completion(id, "failed")));
      expect(await Promise.all(firsts)).toEqual(ids.map(() => "succeeded"));
      expect(new Set(await Promise.all(seconds))).toEqual(new Set([null]));
      const counts = await ds.query(`SELECT status, COUNT(*) AS n FROM ormq_tasks GROUP BY status`);
      expect(counts.map((r: { status: string; n: unknown }) => [r.status, Number(r.n)])).toEqual([["succeeded", 600]]);
      const events = await ds.query(`SELECT kind, COUNT(*) AS n, COUNT(DISTINCT task_id) AS tasks FROM ormq_task_events GROUP BY kind ORDER BY kind`);
      expect(events.map((r: { kind: string; n: unknown; tasks: unknown }) => [r.kind, Number(r.n), Number(r.tasks)])).toEqual([
        ["succeeded", 600, 600],
      ]);
    } finally {
      await worker.close();
    }
  });

  it("group completion: a task rescued, re-claimed or cancelled meanwhile is not overwritten", async () => {
    await ds.getRepository(RecordRun).save(Array.from({ length: 4 }, () => RecordRun.create({})));
    const { logger } = memoryLogger();
    const worker = createDialect(ds, "test-worker", logger);
    try {
      const claimed = await worker.claim({ types: ["record_run"], queues: null, limit: 4, leaseMs: 60_000 });
      expect(claimed).toHaveLength(4);
      const [kept, rescued, reclaimed, cancelled] = claimed.map((r) => String(r.id));
      // Meanwhile: one was rescued (back to pending), one rescued and claimed again (next attempt),
      // one had a cancel request and is to be retried.
      await ds.query(`UPDATE ormq_tasks SET status = 'pending', locked_by = NULL, locked_until = NULL WHERE id IN (${rescued}, ${reclaimed})`);
      await ds.query(`UPDATE ormq_tasks SET status = 'running', locked_by = 'test-worker', attempts = attempts + 1 WHERE id = ${reclaimed}`);
      await ds.query(`UPDATE ormq_tasks SET cancel_requested_at = 1 WHERE id = ${cancelled}`);
      const applied = await worker.complete([
        completion(kept, "succeeded", { history: false }),
        completion(rescued, "succeeded", { history: false }),
        completion(reclaimed, "succeeded", { history: false }),
        completion(cancelled, "pending", { history: false, delayMs: 1_000 }),
      ]);
      expect(Object.fromEntries(applied)).toEqual({ [kept]: "succeeded", [cancelled]: "cancelled" });
      const after = new Map((await rows()).map((r) => [String(r.id), r]));
      expect(after.get(rescued)).toMatchObject({ status: "pending", locked_by: null });
      expect(after.get(reclaimed)).toMatchObject({ status: "running", attempts: 2, locked_by: "test-worker" });
    } finally {
      await worker.close();
    }
  });

  it("deleting succeeded tasks takes the same guard; a batch mixing deletes and updates writes both", async () => {
    await ds.getRepository(EphemeralTask).save(Array.from({ length: 4 }, () => EphemeralTask.create({})));
    const { logger } = memoryLogger();
    const worker = createDialect(ds, "test-worker", logger);
    try {
      const claimed = await worker.claim({ types: ["ephemeral"], queues: null, limit: 4, leaseMs: 60_000 });
      const [gone, rescued, reclaimed, failed] = claimed.map((r) => String(r.id));
      await ds.query(`UPDATE ormq_tasks SET status = 'pending', locked_by = NULL, locked_until = NULL WHERE id = ${rescued}`);
      await ds.query(`UPDATE ormq_tasks SET attempts = attempts + 1 WHERE id = ${reclaimed}`);
      const applied = await worker.complete([
        completion(gone, "succeeded", { remove: true }),
        completion(rescued, "succeeded", { remove: true }),
        completion(reclaimed, "succeeded", { remove: true }),
        completion(failed, "failed"),
      ]);
      expect(Object.fromEntries(applied)).toEqual({ [gone]: "succeeded", [failed]: "failed" });
      const after = new Map((await rows()).map((r) => [String(r.id), r]));
      expect([...after.keys()].sort()).toEqual([rescued, reclaimed, failed].sort());
      expect(after.get(rescued)).toMatchObject({ status: "pending" });
      expect(after.get(reclaimed)).toMatchObject({ status: "running", attempts: 2 });
      expect(after.get(failed)).toMatchObject({ status: "failed" });
      const events = await ds.query(`SELECT task_id, kind FROM ormq_task_events ORDER BY kind`);
      expect(events.map((e: { task_id: unknown; kind: string }) => [String(e.task_id), e.kind])).toEqual([
        [failed, "failed"],
        [gone, "succeeded"],
      ]);
    } finally {
      await worker.close();
    }
  });
});

/** A first attempt's outcome as the worker would submit it, with `fields` changed. */
function completion(id: string, status: Completion["status"], fields: Partial<Completion> = {}): Completion {
  const event = status === "failed" ? "failed" : "succeeded";
  return { id, attempt: 1, status, result: null, lastError: null, errors: null, delayMs: null, refundAttempt: false, event, history: true, remove: false, ...fields };
}
