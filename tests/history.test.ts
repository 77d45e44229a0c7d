import type { DataSource } from "typeorm";
import { processN } from "../src";
import { cancelTask, prune, rescueExpiredTasks, retryTask, showTask, TaskEventEntity } from "../src/admin";
import { AlwaysFails, EphemeralTask, Invoice, QuietTask, RecordRun, SendEmail, testEntities } from "./fixtures/tasks";
import { WITH_MARIADB, memoryLogger, type TestDb, useTestDatabase } from "./support/db";
import { makeAllDue } from "./support/helpers";

describe.each(WITH_MARIADB)("history on %s", (dialect) => {
  let db: TestDb;
  let ds: DataSource;
  const quiet = () => ({ dataSource: ds, logger: memoryLogger().logger });
  const kinds = async (taskId: string) =>
    (await ds.getRepository(TaskEventEntity).find({ where: { taskId }, order: { id: "ASC" } })).map((e) => e.kind);

  useTestDatabase(dialect, (opened) => ({ db, ds } = opened), testEntities);
  beforeEach(async () => {
    await ds.query(`DELETE FROM test_invoices`);
    await ds.query(`DELETE FROM ormq_tasks`);
    await ds.query(`DELETE FROM ormq_task_events`); // no foreign key cascades them
  });

  it("records each transition, with worker, attempt and error, for every child class", async () => {
    const ok = await ds.getRepository(SendEmail).save(SendEmail.create({ to: "h@example.com" }));
    const bad = await ds.getRepository(AlwaysFails).save(AlwaysFails.create({}));
    await processN(SendEmail, 10, quiet());
    await processN(AlwaysFails, 10, quiet());
    await makeAllDue(ds);
    await processN(AlwaysFails, 10, quiet());

    expect(await kinds(ok.id)).toEqual(["started", "succeeded"]);
    expect(await kinds(bad.id)).toEqual(["started", "retried", "started", "failed"]);
    const events = await ds.getRepository(TaskEventEntity).find({ where: { taskId: bad.id }, order: { id: "ASC" }, relations: { task: true } });
    expect(events[0].task).toBeInstanceOf(AlwaysFails); // the relation loads the child class
    expect(events.map((e) => e.attempt)).toEqual([1, 1, 2, 2]);
    expect(events[1].error).toContain("boom on attempt 1");
    expect(events[0].worker).toMatch(/\/\d+\//);
    expect(events.every((e) => e.at instanceof Date)).toBe(true);
  });

  it("a class that keeps no succeeded tasks: the row goes when it succeeds (after retries too), its events stay until prune, a failure is kept", async () => {
    const [once, retried, failing] = await ds.getRepository(EphemeralTask).save([
      EphemeralTask.create({}),
      EphemeralTask.create({ failUntil: 1 }),
      EphemeralTask.create({ failUntil: 5 }),
    ]);
    // Attempts: 1 + 2 + 3; the retry policy retries at once.
    expect(await processN(EphemeralTask, 6, quiet())).toMatchObject({ succeeded: 2, retried: 3, failed: 1 });

    const left = await ds.getRepository(EphemeralTask).find();
    expect(left.map((t) => [t.id, t.status, t.attempts])).toEqual([[failing.id, "failed", 3]]);
    expect(await kinds(once.id)).toEqual(["started", "succeeded"]);
    expect(await kinds(retried.id)).toEqual(["started", "retried", "started", "succeeded"]);
    const result = await prune({ dataSource: ds, olderThan: new Date(Date.now() + 1000) });
    expect(result).toMatchObject({ deleted: 0, orphanedEventsDeleted: 6 }); // failed tasks are kept
    expect(await kinds(failing.id)).toHaveLength(6);
  });

  it("a task that keeps no succeeded tasks but is referenced by a foreign key without ON DELETE is kept, succeeded, with a warning", async () => {
    const task = await ds.getRepository(EphemeralTask).save(EphemeralTask.create({}));
    await ds.getRepository(Invoice).save({ task });
    const log = memoryLogger();
    expect(await processN(EphemeralTask, 1, { dataSource: ds, logger: log.logger })).toMatchObject({ succeeded: 1 });
    const kept = await ds.getRepository(EphemeralTask).findOneByOrFail({ id: task.id });
    expect(kept).toMatchObject({ status: "succeeded", result: { done: 1 }, lockedBy: null });
    expect(await kinds(task.id)).toEqual(["started", "succeeded"]);
    expect(log.lines.some((l) => l.level === "warn" && /foreign key still references/.test(l.msg ?? ""))).toBe(true);
  });

  it("an enqueue writes the task's row and no event row: its history starts at the row's creation", async () => {
    await expect(
      ds.transaction(async (m) => {
        await m.save(SendEmail.create({ to: "gone" }));
        throw new Error("rollback");
      }),
    ).rejects.toThrow("rollback");
    const [a] = await ds.transaction((m) => m.save([SendEmail.create({ to: "a" }), SendEmail.create({ to: "b" })]));
    expect(await ds.getRepository(TaskEventEntity).count()).toBe(0);
    expect(await ds.getRepository(SendEmail).count()).toBe(2);
    const shown = await showTask(a.id, { dataSource: ds });
    expect(shown!.events).toEqual([{ id: null, taskId: a.id, kind: "enqueued", at: a.createdAt, worker: null, attempt: 0, error: null }]);
  });

  it("records rescues and cancellations", async () => {
    const lost = await ds.getRepository(RecordRun).save(RecordRun.create({ label: "lost" }));
    await ds.query(`UPDATE ormq_tasks SET status = 'running', attempts = 1, locked_by = 'gone/1/x', locked_until = 1 WHERE id = ${lost.id}`);
    await rescueExpiredTasks({ dataSource: ds, logger: memoryLogger().logger });
    const cancelled = await ds.getRepository(SendEmail).save(SendEmail.create({ to: "c" }));
    await cancelTask(cancelled.id, { dataSource: ds, reason: "no longer needed" });

    expect(await kinds(lost.id)).toEqual(["rescued"]);
    const [rescued] = await ds.getRepository(TaskEventEntity).find({ where: { taskId: lost.id, kind: "rescued" } });
    expect(rescued.error).toContain("stopped renewing its lease");
    expect(await kinds(cancelled.id)).toEqual(["cancelled"]);
  });

  it("a class with history off writes no events but keeps its own error list", async () => {
    const task = await ds.getRepository(QuietTask).save(QuietTask.create({ fail: true }));
    await processN(QuietTask, 10, quiet());
    expect(await kinds(task.id)).toEqual([]);
    const stored = await ds.getRepository(QuietTask).findOneByOrFail({ id: task.id });
    expect(stored.status).toBe("failed");
    expect(stored.errors!.map((e) => e.message)).toEqual(["quietly failing"]);
    // Requeued and cancelled from outside a worker: still no events.
    expect((await retryTask(task.id, { dataSource: ds })).outcome).toBe("requeued");
    expect((await cancelTask(task.id, { dataSource: ds })).outcome).toBe("cancelled");
    expect(await kinds(task.id)).toEqual([]);
  });

  it("the events of a task the application deleted go at the next prune, once older than its cutoff", async () => {
    const [gone, kept] = await ds.getRepository(SendEmail).save([SendEmail.create({ to: "d" }), SendEmail.create({ to: "k" })]);
    await processN(SendEmail, 10, quiet());
    await ds.getRepository(SendEmail).delete({ id: gone.id });
    expect(await ds.getRepository(TaskEventEntity).countBy({ taskId: gone.id })).toBe(2); // no foreign key
    expect((await prune({ dataSource: ds, olderThan: 3_600_000 })).orphanedEventsDeleted).toBe(0); // too recent
    await ds.query(`UPDATE ormq_task_events SET at = 1000`);
    const result = await prune({ dataSource: ds, olderThan: 3_600_000, statuses: ["failed"] });
    expect(result.orphanedEventsDeleted).toBe(2);
    expect(await ds.getRepository(TaskEventEntity).countBy({ taskId: gone.id })).toBe(0);
    expect(await ds.getRepository(TaskEventEntity).countBy({ taskId: kept.id })).toBe(2); // its task is still there
  });
});
