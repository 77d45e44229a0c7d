import type { DataSource } from "typeorm";
import { processForever, processN } from "../src";
import { getStats, prune, retryFailed, retryTask, showTask, TaskEventEntity } from "../src/admin";
import { AlwaysFails, Invoice, QuietTask, SendEmail, testEntities } from "./fixtures/tasks";
import { WITH_MARIADB, memoryLogger, type TestDb, useTestDatabase } from "./support/db";
import { makeAllDue, reload, until } from "./support/helpers";

describe.each(WITH_MARIADB)("admin functions on %s", (dialect) => {
  let db: TestDb;
  let ds: DataSource;
  const quiet = () => ({ dataSource: ds, logger: memoryLogger().logger });

  useTestDatabase(dialect, (opened) => ({ db, ds } = opened), testEntities);
  beforeEach(async () => {
    await ds.query(`DELETE FROM test_invoices`);
    await ds.query(`DELETE FROM test_images`);
    await ds.query(`DELETE FROM ormq_tasks`);
    await ds.query(`DELETE FROM ormq_task_events`); // no foreign key cascades them
    await ds.query(`DELETE FROM ormq_workers`);
  });

  async function failForGood(task: AlwaysFails) {
    await processN(AlwaysFails, 10, quiet());
    await makeAllDue(ds);
    await processN(AlwaysFails, 10, quiet());
    expect((await reload(ds, task)).status).toBe("failed");
  }

  it("retryTask requeues a failed task with one more attempt, keeping its history", async () => {
    const task = await ds.getRepository(AlwaysFails).save(AlwaysFails.create({}));
    await failForGood(task);
    expect(await retryTask(task.id, { dataSource: ds })).toEqual({ outcome: "requeued", id: task.id });
    expect(await reload(ds, task)).toMatchObject({ status: "pending", attempts: 2, maxAttempts: 3, finishedAt: null });
    await processN(AlwaysFails, 10, quiet());
    const again = await reload(ds, task);
    expect(again).toMatchObject({ status: "failed", attempts: 3 });
    expect(again.errors).toHaveLength(3);
    const kinds = (await ds.getRepository(TaskEventEntity).find({ where: { taskId: task.id }, order: { id: "ASC" } })).map((e) => e.kind);
    expect(kinds).toEqual(["retried", "failed", "requeued", "failed"]);
    const shown = (await showTask(task.id, { dataSource: ds }))!.events.map((e) => e.kind);
    expect(shown).toEqual(["enqueued", "started", "retried", "started", "failed", "requeued", "started", "failed"]);

    const pending = await ds.getRepository(SendEmail).save(SendEmail.create({ to: "p" }));
    expect(await retryTask(pending.id, { dataSource: ds })).toEqual({ outcome: "notFailed", id: pending.id, status: "pending" });
    expect(await retryTask("424242", { dataSource: ds })).toEqual({ outcome: "notFound", id: "424242" });
  });

  it("a requeued task wakes an idle worker at once, not at its next poll", async () => {
    const controller = new AbortController();
    const done = processForever(AlwaysFails, { ...quiet(), pollIntervalMs: 600_000, signal: controller.signal });
    try {
      const task = await ds.getRepository(AlwaysFails).save(AlwaysFails.create({}));
      await until("failed for good, the worker asleep", async () => (await reload(ds, task)).status === "failed", 10_000);
      await retryTask(task.id, { dataSource: ds });
      await until("requeued task ran again", async () => (await reload(ds, task)).attempts === 3, 5_000);
    } finally {
      controller.abort();
      await done;
    }
  });

  it("retryFailed requeues the failed tasks of one type", async () => {
    const a = await ds.getRepository(AlwaysFails).save(AlwaysFails.create({}));
    const b = await ds.getRepository(AlwaysFails).save(AlwaysFails.create({}));
    const q = await ds.getRepository(QuietTask).save(QuietTask.create({ fail: true }));
    await failForGood(a);
    await processN(QuietTask, 10, quiet());
    expect(await retryFailed({ dataSource: ds, type: "always_fails" })).toEqual({ requeued: 2, duplicates: 0 });
    expect((await reload(ds, a)).status).toBe("pending");
    expect((await reload(ds, b)).status).toBe("pending");
    expect((await reload(ds, q)).status).toBe("failed");
  });

  it("prune removes old finished tasks and their events, keeps failed ones, and reports what a foreign key holds", async () => {
    const old = await ds.getRepository(SendEmail).save([SendEmail.create({ to: "old1" }), SendEmail.create({ to: "old2" }), SendEmail.create({ to: "held" })]);
    const failed = await ds.getRepository(QuietTask).save(QuietTask.create({ fail: true }));
    await processN(SendEmail, 10, quiet());
    await processN(QuietTask, 10, quiet());
    await ds.query(`UPDATE ormq_tasks SET finished_at = 1000`); // long ago
    const recent = await ds.getRepository(SendEmail).save(SendEmail.create({ to: "recent" }));
    await processN(SendEmail, 10, quiet());
    const pending = await ds.getRepository(SendEmail).save(SendEmail.create({ to: "waiting" }).delay(3_600_000));
    const held = old[2];
    await ds.getRepository(Invoice).save({ task: held });

    const result = await prune({ dataSource: ds, olderThan: 60_000 });
    expect(result.deleted).toBe(2);
    expect(result.blocked.map((b) => b.id)).toEqual([held.id]);
    const left = (await ds.getRepository(SendEmail).find()).map((t) => t.to).sort();
    expect(left).toEqual(["held", "recent", "waiting"]);
    expect((await reload(ds, failed)).status).toBe("failed"); // the dead-letter list stays
    expect(await ds.getRepository(TaskEventEntity).countBy({ taskId: old[0].id })).toBe(0);
    expect(await ds.getRepository(TaskEventEntity).countBy({ taskId: recent.id })).toBeGreaterThan(0);
    expect((await reload(ds, pending)).status).toBe("pending");

    expect((await prune({ dataSource: ds, olderThan: 60_000, statuses: ["failed"] })).deleted).toBe(1);
    await expect(prune({ dataSource: ds, olderThan: 60_000, statuses: ["pending"] })).rejects.toThrow(/finished statuses/);
  });

  it("a worker prunes periodically when asked to", async () => {
    await ds.getRepository(SendEmail).save(SendEmail.create({ to: "old" }));
    await processN(SendEmail, 10, quiet());
    await ds.query(`UPDATE ormq_tasks SET finished_at = 1000`);
    const controller = new AbortController();
    const worker = processForever(QuietTask, { ...quiet(), signal: controller.signal, prune: { olderThan: 60_000, intervalMs: 50 } });
    try {
      await until("the worker pruned", async () => (await ds.getRepository(SendEmail).count()) === 0);
    } finally {
      controller.abort();
      await worker;
    }
  });

  it("getStats reports counts, the oldest ready task's age, recent finishes, live workers and unknown types", async () => {
    await ds.getRepository(SendEmail).save(SendEmail.create({ to: "done" }));
    await processN(SendEmail, 10, quiet());
    await ds.getRepository(SendEmail).save(SendEmail.create({ to: "ready", runAt: new Date(Date.now() - 5_000) }));
    const controller = new AbortController();
    const worker = processForever(QuietTask, { ...quiet(), signal: controller.signal });
    try {
      await until("worker registered", async () => (await getStats({ dataSource: ds })).liveWorkers === 1);
      const stats = await getStats({ dataSource: ds });
      expect(stats.finishedLastMinute).toBe(1);
      expect(stats.oldestReadyAgeMs).toBeGreaterThanOrEqual(4_000);
      expect(stats.counts).toEqual(
        expect.arrayContaining([
          { queue: "emails", type: "send_email", status: "succeeded", count: 1 },
          { queue: "emails", type: "send_email", status: "pending", count: 1 },
        ]),
      );
      expect(stats.unknownTypes).toEqual([]);
    } finally {
      controller.abort();
      await worker;
    }
    expect((await getStats({ dataSource: ds })).liveWorkers).toBe(0);
  });
});
