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

    // One row per attempt: its outcome, carrying when it started.
    expect(await kinds(ok.id)).toEqual(["succeeded"]);
    expect(await kinds(bad.id)).toEqual(["retried", "failed"]);
    const events = await ds.getRepository(TaskEventEntity).find({ where: { taskId: bad.id }, order: { id: "ASC" }, relations: { task: true } });
    expect(events[0].task).toBeInstanceOf(AlwaysFails); // the relation loads the child class
    expect(events.map((e) => e.attempt)).toEqual([1, 2]);
    expect(events[0].error).toContain("boom on attempt 1");
    expect(events[0].worker).toMatch(/\/\d+\//);
    expect(events.every((e) => e.at instanceof Date && e.startedAt instanceof Date && e.startedAt <= e.at)).toBe(true);
    expect(events[1].startedAt!.getTime()).toBeGreaterThanOrEqual(events[0].at.getTime());

    // showTask lists each attempt's start as an event of its own, before its outcome.
    const shown = (await showTask(bad.id, { dataSource: ds }))!.events;
    expect(shown.map((e) => [e.kind, e.attempt])).toEqual([["enqueued", 0], ["started", 1], ["retried", 1], ["started", 2], ["failed", 2]]);
    expect(shown[1]).toEqual({ id: null, taskId: bad.id, kind: "started", at: events[0].startedAt, worker: events[0].worker, attempt: 1, error: null });
  });

  it("showTask lists the start of the attempt running now from the task's row, and a start row written by an earlier ormq once", async () => {
    const task = await ds.getRepository(RecordRun).save(RecordRun.create({ label: "running" }));
    await ds.query(`UPDATE ormq_tasks SET status = 'running', attempts = 2, locked_by = 'w/1/x', locked_until = 1, started_at = 5000 WHERE id = ${task.id}`);
    // Attempt 1 as an earlier version of ormq recorded it: a "started" row, then its outcome.
    await ds.getRepository(TaskEventEntity).save([
      { taskId: task.id, kind: "started", at: new Date(1000), worker: "w/1/x", attempt: 1, error: null, startedAt: null },
      { taskId: task.id, kind: "retried", at: new Date(2000), worker: "w/1/x", attempt: 1, error: "E: no", startedAt: null },
    ]);
    const shown = (await showTask(task.id, { dataSource: ds }))!.events;
    expect(shown.map((e) => [e.kind, e.attempt, e.at instanceof Date ? e.at.getTime() : e.at, e.worker])).toEqual([
      ["enqueued", 0, task.createdAt.getTime(), null],
      ["started", 1, 1000, "w/1/x"],
      ["retried", 1, 2000, "w/1/x"],
      ["started", 2, 5000, "w/1/x"],
    ]);
  });

  it("showTask: an earlier ormq's start row stands for one outcome only (a handed-back attempt's number comes again); a class with history off shows no start", async () => {
    const task = await ds.getRepository(RecordRun).save(RecordRun.create({ label: "handed back" }));
    await ds.query(`UPDATE ormq_tasks SET status = 'succeeded', attempts = 1, started_at = 3000 WHERE id = ${task.id}`);
    await ds.getRepository(TaskEventEntity).save([
      { taskId: task.id, kind: "started", at: new Date(1000), worker: "w/1/x", attempt: 1, error: null, startedAt: null },
      { taskId: task.id, kind: "handed_back", at: new Date(2000), worker: "w/1/x", attempt: 1, error: null, startedAt: null },
      { taskId: task.id, kind: "succeeded", at: new Date(4000), worker: "w/2/y", attempt: 1, error: null, startedAt: new Date(3000) },
    ]);
    const shown = (await showTask(task.id, { dataSource: ds }))!.events;
    expect(shown.slice(1).map((e) => [e.kind, e.attempt, e.at instanceof Date ? e.at.getTime() : e.at])).toEqual([
      ["started", 1, 1000],
      ["handed_back", 1, 2000],
      ["started", 1, 3000],
      ["succeeded", 1, 4000],
    ]);

    const quiet = await ds.getRepository(QuietTask).save(QuietTask.create({}));
    await ds.query(`UPDATE ormq_tasks SET status = 'running', attempts = 1, locked_by = 'w/1/x', locked_until = 1, started_at = 5000 WHERE id = ${quiet.id}`);
    expect((await showTask(quiet.id, { dataSource: ds }))!.events.map((e) => e.kind)).toEqual(["enqueued"]);
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
    expect(await kinds(once.id)).toEqual(["succeeded"]);
    expect(await kinds(retried.id)).toEqual(["retried", "succeeded"]);
    const result = await prune({ dataSource: ds, olderThan: new Date(Date.now() + 1000) });
    expect(result).toMatchObject({ deleted: 0, orphanedEventsDeleted: 3 }); // failed tasks are kept
    expect(await kinds(failing.id)).toHaveLength(3);
  });

  it("a task that keeps no succeeded tasks but is referenced by a foreign key without ON DELETE is kept, succeeded, with a warning", async () => {
    // Beside two that nothing references, finishing in the same completion batch as a rule.
    const [task, ...free] = await ds.getRepository(EphemeralTask).save([EphemeralTask.create({}), EphemeralTask.create({}), EphemeralTask.create({})]);
    await ds.getRepository(Invoice).save({ task });
    const log = memoryLogger();
    expect(await processN(EphemeralTask, 3, { dataSource: ds, logger: log.logger })).toMatchObject({ succeeded: 3 });
    const left = await ds.getRepository(EphemeralTask).find();
    // PostgreSQL keeps the other successes its one statement wrote beside it (docs/operations.md).
    if (dialect === "postgres") expect(left.every((t) => t.status === "succeeded") && left.some((t) => t.id === task.id)).toBe(true);
    else expect(left.map((t) => t.id)).toEqual([task.id]);
    for (const gone of free) expect(await kinds(gone.id)).toEqual(["succeeded"]);
    const kept = await ds.getRepository(EphemeralTask).findOneByOrFail({ id: task.id });
    expect(kept).toMatchObject({ status: "succeeded", result: { done: 1 }, lockedBy: null });
    expect(await kinds(task.id)).toEqual(["succeeded"]);
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
    await ds.query(`UPDATE ormq_tasks SET status = 'running', attempts = 1, locked_by = 'gone/1/x', locked_until = 1, started_at = 4000 WHERE id = ${lost.id}`);
    await rescueExpiredTasks({ dataSource: ds, logger: memoryLogger().logger });
    const cancelled = await ds.getRepository(SendEmail).save(SendEmail.create({ to: "c" }));
    await cancelTask(cancelled.id, { dataSource: ds, reason: "no longer needed" });

    expect(await kinds(lost.id)).toEqual(["rescued"]);
    const [rescued] = await ds.getRepository(TaskEventEntity).find({ where: { taskId: lost.id, kind: "rescued" } });
    expect(rescued.error).toContain("stopped renewing its lease");
    expect(rescued.startedAt).toEqual(new Date(4000));
    // The lost attempt's start, without the rescuer as its worker (the error names the lost one).
    const shown = (await showTask(lost.id, { dataSource: ds }))!.events;
    expect(shown.slice(1).map((e) => [e.kind, e.attempt, e.worker === null])).toEqual([["started", 1, true], ["rescued", 1, false]]);
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
    expect(await ds.getRepository(TaskEventEntity).countBy({ taskId: gone.id })).toBe(1); // no foreign key
    expect((await prune({ dataSource: ds, olderThan: 3_600_000 })).orphanedEventsDeleted).toBe(0); // too recent
    await ds.query(`UPDATE ormq_task_events SET at = 1000`);
    const result = await prune({ dataSource: ds, olderThan: 3_600_000, statuses: ["failed"] });
    expect(result.orphanedEventsDeleted).toBe(1);
    expect(await ds.getRepository(TaskEventEntity).countBy({ taskId: gone.id })).toBe(0);
    expect(await ds.getRepository(TaskEventEntity).countBy({ taskId: kept.id })).toBe(1); // its task is still there
  });
});
