import type { DataSource } from "typeorm";
import { BaseTaskEntity, processN, processOne } from "../src";
import { getStats } from "../src/admin";
import { createDialect } from "../src/dialect";
import { TaskRegistry } from "../src/registry";
import { hydrate } from "../src/worker/hydrate";
import { AlwaysFails, Image, RecordRun, RunLog, SendEmail, SleepyTask, SpecialRecordRun, testEntities, TxTask } from "./fixtures/tasks";
import { WITH_MARIADB, memoryLogger, type TestDb, useTestDatabase } from "./support/db";
import { expectedSummary, makeAllDue, reload, until } from "./support/helpers";
import { ormqFor } from "../src/client/client";

describe.each(WITH_MARIADB)("core on %s", (dialect) => {
  let db: TestDb;
  let ds: DataSource;
  const quiet = () => ({ dataSource: ds, logger: memoryLogger().logger });

  useTestDatabase(dialect, (opened) => ({ db, ds } = opened), testEntities);
  beforeEach(async () => {
    await ds.query(`DELETE FROM test_images`);
    await ds.query(`DELETE FROM ormq_tasks`);
    await ds.query(`DELETE FROM ormq_task_events`); // no foreign key cascades them
    await ds.query(`DELETE FROM test_runs`);
  });

  describe("enqueue", () => {
    it("save() enqueues with the class's defaults; an instance value wins; subclasses inherit", async () => {
      const email = await ds.getRepository(SendEmail).save(SendEmail.create({ to: "a@example.com" }));
      const urgent = await ds.getRepository(SendEmail).save(SendEmail.create({ to: "b@example.com", queue: "urgent", priority: 9 }));
      const special = await ds.getRepository(SpecialRecordRun).save(SpecialRecordRun.create({ label: "s" }));
      const failing = await ds.getRepository(AlwaysFails).save(AlwaysFails.create({}));

      expect(typeof email.id).toBe("string");
      const stored = await reload(ds, email);
      expect(stored).toBeInstanceOf(SendEmail);
      expect(stored).toMatchObject({ type: "send_email", queue: "emails", priority: 0, maxAttempts: 3, status: "pending", attempts: 0 });
      expect(stored.runAt).toBeInstanceOf(Date);
      expect(Math.abs(stored.runAt.getTime() - Date.now())).toBeLessThan(60_000);
      expect(await reload(ds, urgent)).toMatchObject({ queue: "urgent", priority: 9 });
      expect(await reload(ds, special)).toMatchObject({ type: "record_run_special", queue: "records", maxAttempts: 5 });
      expect(await reload(ds, failing)).toMatchObject({ queue: "default", maxAttempts: 2 });
    });

    it("child columns are first-class: queried with plain TypeORM, base find() returns child instances", async () => {
      await ds.getRepository(SendEmail).save([SendEmail.create({ to: "x@example.com" }), SendEmail.create({ to: "y@example.com" })]);
      await ds.getRepository(RecordRun).save(RecordRun.create({ label: "r" }));
      const found = await ds.getRepository(SendEmail).findBy({ to: "x@example.com" });
      expect(found.map((t) => t.to)).toEqual(["x@example.com"]);
      const all = await ds.getRepository(BaseTaskEntity).find({ order: { id: "ASC" } });
      expect(all.map((t) => t.constructor.name)).toEqual(["SendEmail", "SendEmail", "RecordRun"]);
      expect(all.every((t) => typeof t.id === "string")).toBe(true);
    });

    it("insert() with a plain object gets the defaults too", async () => {
      await ds.getRepository(SendEmail).insert({ to: "plain@example.com" });
      const [row] = await ds.getRepository(SendEmail).findBy({ to: "plain@example.com" });
      expect(row).toMatchObject({ type: "send_email", queue: "emails", status: "pending", maxAttempts: 3 });
    });

    it("a plain object saved through the base repository is refused, not stored as the base class", async () => {
      await expect(ds.getRepository(BaseTaskEntity).save({ queue: "q" } as never)).rejects.toThrow(/instance of its task class/);
      expect(await ds.getRepository(BaseTaskEntity).count()).toBe(0);
    });

    it("a task enqueued in a transaction commits with the app's data, and a rollback leaves no task", async () => {
      await ds.transaction(async (m) => {
        await m.save(Image, m.create(Image, { url: "committed.png" }));
        await m.save(SendEmail.create({ to: "commit@example.com" }));
      });
      await expect(
        ds.transaction(async (m) => {
          await m.save(Image, m.create(Image, { url: "rolled-back.png" }));
          await m.save(SendEmail.create({ to: "rollback@example.com" }));
          throw new Error("the app changes its mind");
        }),
      ).rejects.toThrow("the app changes its mind");
      expect((await ds.getRepository(SendEmail).find()).map((t) => t.to)).toEqual(["commit@example.com"]);
      expect((await ds.getRepository(Image).find()).map((i) => i.url)).toEqual(["committed.png"]);
      expect((await processN(SendEmail, 10, quiet())).succeeded).toBe(1);
    });
  });

  describe("isolation", () => {
    it("no worker sees a task before its transaction commits", async () => {
      const runner = ds.createQueryRunner();
      await runner.startTransaction();
      try {
        await runner.manager.save(SendEmail.create({ to: "uncommitted@example.com" }));
        if (dialect === "postgres") {
          expect((await processN(SendEmail, 10, quiet())).processed).toBe(0);
          await runner.commitTransaction();
          expect((await processN(SendEmail, 10, quiet())).succeeded).toBe(1);
        } else {
          // SQLite: the open transaction holds the write lock; the worker waits (asynchronously,
          // so this transaction can finish) instead of failing with SQLITE_BUSY, then claims.
          const working = processN(SendEmail, 10, quiet());
          await new Promise((r) => setImmediate(r));
          await runner.commitTransaction();
          expect((await working).succeeded).toBe(1);
        }
      } finally {
        if (runner.isTransactionActive) await runner.rollbackTransaction();
        await runner.release();
      }
    });
  });

  describe("claim", () => {
    it("a child class's worker runs only its type and subclasses; a base worker runs every type", async () => {
      const email = await ds.getRepository(SendEmail).save(SendEmail.create({ to: "e@example.com" }));
      const record = await ds.getRepository(RecordRun).save(RecordRun.create({ label: "plain" }));
      const special = await ds.getRepository(SpecialRecordRun).save(SpecialRecordRun.create({ label: "special" }));

      const first = await processN(RecordRun, 10, quiet());
      expect(first).toEqual(expectedSummary({ processed: 2, succeeded: 2, failed: 0, retried: 0 }));
      expect((await reload(ds, email)).status).toBe("pending");
      // Each claimed row is hydrated into its own class, child columns included.
      expect((await reload(ds, record)).result).toEqual({ label: "plain", cls: "RecordRun" });
      expect((await reload(ds, special)).result).toEqual({ label: "special", cls: "SpecialRecordRun" });

      const second = await processN(BaseTaskEntity, 10, quiet());
      expect(second.succeeded).toBe(1);
      expect(await reload(ds, email)).toMatchObject({ status: "succeeded", result: { sent: "e@example.com" }, attempts: 1 });
    });

    it("a claimed row becomes an instance of its class equal to what find() loads, child columns included", async () => {
      const saved = await ds.getRepository(SleepyTask).save(SleepyTask.create({ ms: 7, ignoreSignal: true, timeoutMs: 1234 }));
      // Every base column with a value: an earlier failure's errors and a result, as a retry has.
      await ds.query(`UPDATE ormq_tasks SET errors = '[{"attempt":1,"at":5,"name":"Error","message":"m"}]', result = '{"a":[1]}', last_error = 'Error: m' WHERE id = ${saved.id}`);
      const dialect = createDialect(ds, "hydrate-test", memoryLogger().logger);
      try {
        const [row] = await dialect.claim({ types: ["sleepy"], queues: null, limit: 1, leaseMs: 60_000 });
        const type = ormqFor(ds).registry.byKey.get("sleepy")!;
        const task = hydrate(type.metadata, ds.driver, row);
        expect(task).toBeInstanceOf(SleepyTask);
        const found = await ds.getRepository(SleepyTask).findOneByOrFail({ id: saved.id });
        expect(task).toEqual(found);
        expect(task).toMatchObject({ id: saved.id, ms: 7, ignoreSignal: true, timeoutMs: 1234, status: "running", errors: [{ attempt: 1 }], result: { a: [1] } });
        expect(task.startedAt).toBeInstanceOf(Date);
        expect(task.finishedAt).toBeNull();
      } finally {
        await dialect.close();
      }
    });

    it("runs higher priority first, then earlier runAt, then insertion order", async () => {
      const repo = ds.getRepository(RecordRun);
      const past = new Date(Date.now() - 60_000);
      const specs = [
        { label: "p0-a", priority: 0 },
        { label: "p5-a", priority: 5 },
        { label: "p1", priority: 1 },
        { label: "p5-b", priority: 5 },
        { label: "p0-earlier", priority: 0, runAt: past },
        { label: "p5-earlier", priority: 5, runAt: past },
      ];
      for (const spec of specs) await repo.save(RecordRun.create(spec));
      await processN(RecordRun, 10, { ...quiet(), concurrency: 1 });
      const runs = await ds.getRepository(RunLog).find({ order: { id: "ASC" } });
      const labels = [];
      for (const run of runs) labels.push((await repo.findOneByOrFail({ id: run.taskId })).label);
      expect(labels).toEqual(["p5-earlier", "p5-a", "p5-b", "p1", "p0-earlier", "p0-a"]);
    });

    it("leaves a task whose type has no class alone, and counts it in the stats", async () => {
      await ds.getRepository(SendEmail).save(SendEmail.create({ to: "known@example.com" }));
      const now = Date.now();
      await ds.query(
        `INSERT INTO ormq_tasks (type, queue, status, priority, run_at, attempts, max_attempts, created_at, updated_at)
         VALUES ('ghost_type', 'default', 'pending', 100, ${now - 1000}, 0, 5, ${now}, ${now})`,
      );
      const summary = await processN(BaseTaskEntity, 10, quiet());
      expect(summary.processed).toBe(1);
      const [ghost] = await ds.query(`SELECT status, attempts FROM ormq_tasks WHERE type = 'ghost_type'`);
      expect(ghost).toMatchObject({ status: "pending" });
      expect(Number(ghost.attempts)).toBe(0);
      const stats = await getStats({ dataSource: ds });
      expect(stats.unknownTypes).toEqual([{ type: "ghost_type", count: 1 }]);
      expect(stats.counts).toContainEqual({ queue: "emails", type: "send_email", status: "succeeded", count: 1 });
    });

    it("takes only the queues it is given", async () => {
      await ds.getRepository(SendEmail).save([SendEmail.create({ to: "a" }), SendEmail.create({ to: "b", queue: "bulk" })]);
      const summary = await processN(SendEmail, 10, { ...quiet(), queues: ["bulk"] });
      expect(summary.succeeded).toBe(1);
      expect((await ds.getRepository(SendEmail).findOneByOrFail({ to: "a" })).status).toBe("pending");
      expect((await ds.getRepository(SendEmail).findOneByOrFail({ to: "b" })).status).toBe("succeeded");
    });
  });

  describe("processN and processOne", () => {
    it("processN runs at most n attempts and leaves the rest", async () => {
      await ds.getRepository(RecordRun).save(Array.from({ length: 5 }, (_, i) => RecordRun.create({ label: `t${i}` })));
      const summary = await processN(RecordRun, 3, { ...quiet(), concurrency: 2 });
      expect(summary).toEqual(expectedSummary({ processed: 3, succeeded: 3, failed: 0, retried: 0 }));
      expect(await ds.getRepository(RunLog).count()).toBe(3);
      expect(await ds.getRepository(RecordRun).countBy({ status: "pending" })).toBe(2);
    });

    it("processN resolves at once when nothing is ready; a future runAt is not ready", async () => {
      await ds.getRepository(RecordRun).save(RecordRun.create({ label: "later", runAt: new Date(Date.now() + 3_600_000) }));
      expect(await processN(RecordRun, 10, quiet())).toEqual(expectedSummary({ processed: 0, succeeded: 0, failed: 0, retried: 0 }));
    });

    it("processOne resolves with the task it ran, or null", async () => {
      expect(await processOne(SendEmail, quiet())).toBeNull();
      const task = await ds.getRepository(SendEmail).save(SendEmail.create({ to: "one@example.com" }));
      const ran = await processOne(SendEmail, quiet());
      expect(ran).toBeInstanceOf(SendEmail);
      expect(ran).toMatchObject({ id: task.id, status: "succeeded", attempts: 1, to: "one@example.com" });
      expect(ran!.finishedAt).toBeInstanceOf(Date);
    });

    it("a failing task retries later, then fails for good; every error is kept and error() runs each time", async () => {
      AlwaysFails.errorCalls = [];
      const task = await ds.getRepository(AlwaysFails).save(AlwaysFails.create({}));

      const first = await processN(AlwaysFails, 10, quiet());
      expect(first).toEqual(expectedSummary({ processed: 1, succeeded: 0, failed: 0, retried: 1 }));
      const waiting = await reload(ds, task);
      expect(waiting).toMatchObject({ status: "pending", attempts: 1, lockedBy: null });
      expect(waiting.runAt.getTime()).toBeGreaterThan(Date.now());
      expect(waiting.lastError).toContain("boom on attempt 1");

      // Not ready until its retry delay passes; make it due rather than wait.
      expect((await processN(AlwaysFails, 10, quiet())).processed).toBe(0);
      await makeAllDue(ds);
      const second = await processN(AlwaysFails, 10, quiet());
      expect(second).toEqual(expectedSummary({ processed: 1, succeeded: 0, failed: 1, retried: 0 }));

      const failed = await reload(ds, task);
      expect(failed).toMatchObject({ status: "failed", attempts: 2, lockedBy: null });
      expect(failed.finishedAt).toBeInstanceOf(Date);
      expect(failed.errors!.map((e) => [e.attempt, e.message])).toEqual([
        [1, "boom on attempt 1"],
        [2, "boom on attempt 2"],
      ]);
      expect(failed.lastError).toContain("boom on attempt 2");
      expect(AlwaysFails.errorCalls.map((c) => c.attempt)).toEqual([1, 2]);
    });
  });

  describe("relations", () => {
    it("a user's entity relates to the base task class and to a child class, with child instances", async () => {
      const email = await ds.getRepository(SendEmail).save(SendEmail.create({ to: "rel@example.com" }));
      const record = await ds.getRepository(RecordRun).save(RecordRun.create({ label: "rel" }));
      // A child instance assigned to a base-typed relation: BeanQueue's FlushError case.
      await ds.getRepository(Image).save(ds.getRepository(Image).create({ url: "a.png", task: record, email }));
      const image = await ds.getRepository(Image).findOneOrFail({ where: { url: "a.png" }, relations: { task: true, email: true } });
      expect(image.task).toBeInstanceOf(RecordRun);
      expect((image.task as RecordRun).label).toBe("rel");
      expect(image.email).toBeInstanceOf(SendEmail);
      expect(image.email!.to).toBe("rel@example.com");

      // The task still runs normally, and the relation survives its state changes.
      await processN(BaseTaskEntity, 10, quiet());
      const after = await ds.getRepository(Image).findOneOrFail({ where: { url: "a.png" }, relations: { task: true } });
      expect(after.task).toMatchObject({ id: record.id, status: "succeeded" });
      // Queried from the task's side, like any other entity.
      const byTask = await ds.getRepository(Image).find({ where: { email: { to: "rel@example.com" } } });
      expect(byTask).toHaveLength(1);
    });
  });

  describe("tasks that open transactions", () => {
    it("a task's rollback never takes another task's plain saves with it", async () => {
      TxTask.reset();
      const repo = ds.getRepository(TxTask);
      await repo.save(TxTask.create({ mode: "hold", priority: 1 })); // claimed and started first
      await repo.save(Array.from({ length: 5 }, () => TxTask.create({ mode: "bare" })));
      const working = processN(TxTask, 10, { ...quiet(), concurrency: 10 });
      // The bare tasks are running (on SQLite, waiting for the held transaction) before it rolls back.
      await until("bare tasks started", () => TxTask.bareStarted === 5);
      TxTask.release!();
      expect(await working).toEqual(expectedSummary({ processed: 6, succeeded: 5, failed: 1, retried: 0 }));

      const runs = await ds.getRepository(RunLog).find();
      expect(runs.map((r) => r.worker).sort()).toEqual(["bare", "bare", "bare", "bare", "bare"]);
      expect(await ds.getRepository(SendEmail).count()).toBe(5);
      expect((await repo.findOneByOrFail({ mode: "hold" })).lastError).toContain("rolling back on purpose");
    });

    it("transactions that read then write succeed while the worker writes outcomes", async () => {
      await ds.getRepository(TxTask).save(Array.from({ length: 40 }, () => TxTask.create({ mode: "read-write" })), { chunk: 20 });
      const summary = await processN(TxTask, 1000, { ...quiet(), concurrency: 10 });
      expect(summary).toEqual(expectedSummary({ processed: 40, succeeded: 40, failed: 0, retried: 0 }));
      expect(await ds.getRepository(RunLog).count()).toBe(40);
    });

    it("at concurrency 10, every task's ctx.transaction commits and every task succeeds", async () => {
      await ds.getRepository(RecordRun).save(Array.from({ length: 60 }, (_, i) => RecordRun.create({ label: `tx${i}` })));
      const summary = await processN(RecordRun, 1000, { ...quiet(), concurrency: 10 });
      expect(summary).toEqual(expectedSummary({ processed: 60, succeeded: 60, failed: 0, retried: 0 }));
      expect(await ds.getRepository(RunLog).count()).toBe(60);
    });
  });
});
