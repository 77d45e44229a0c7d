import type { DataSource } from "typeorm";
import {
  BaseTaskEntity,
  InvalidOptionError,
  processForever,
  processN,
  TaskTimeoutError,
  TaskValidationError,
  WorkerNeedsRestartError,
  type ProcessSummary,
} from "../src";
import { cancelTask } from "../src/admin";
import {
  GateTask,
  hookEvents,
  Image,
  RecordRun,
  RetryOnTypeError,
  RunLog,
  ScriptedTask,
  SendEmail,
  SleepyTask,
  testEntities,
  ValidatedEmail,
} from "./fixtures/tasks";
import { WITH_MARIADB, memoryLogger, type TestDb, useTestDatabase } from "./support/db";
import { expectedSummary, reload, until } from "./support/helpers";
import { spawnWorker } from "./support/processes";

describe.each(WITH_MARIADB)("failure, time and control on %s", (dialect) => {
  let db: TestDb;
  let ds: DataSource;
  const quiet = () => ({ dataSource: ds, logger: memoryLogger().logger });

  useTestDatabase(dialect, (opened) => ({ db, ds } = opened), testEntities);
  beforeEach(async () => {
    await ds.query(`DELETE FROM test_images`);
    await ds.query(`DELETE FROM ormq_tasks`);
    await ds.query(`DELETE FROM ormq_task_events`); // no foreign key cascades them
    await ds.query(`DELETE FROM test_runs`);
    hookEvents.length = 0;
    GateTask.reset();
    SleepyTask.reset();
  });

  describe("retries and hooks", () => {
    it("calls error() after every failed attempt, shouldRetry() while attempts remain, failed() once at the end", async () => {
      const task = await ds.getRepository(ScriptedTask).save(ScriptedTask.create({ script: "fail" }));
      expect(await processN(ScriptedTask, 10, quiet())).toEqual(expectedSummary({ processed: 2, retried: 1, failed: 1 }));
      expect(hookEvents).toEqual(["run:1", "error:1", "shouldRetry:1", "run:2", "error:2", "failed:2:Error"]);
      const failed = await reload(ds, task);
      expect(failed).toMatchObject({ status: "failed", attempts: 2 });
      expect(failed.errors!.map((e) => [e.attempt, e.message])).toEqual([
        [1, "scripted failure 1"],
        [2, "scripted failure 2"],
      ]);
      expect(failed.errors![0].stack).toContain("scripted failure 1");
    });

    it("shouldRetry() returning false gives up at once, whatever attempts remain", async () => {
      const task = await ds.getRepository(ScriptedTask).save(ScriptedTask.create({ script: "no-retry", maxAttempts: 5 }));
      expect(await processN(ScriptedTask, 10, quiet())).toEqual(expectedSummary({ processed: 1, failed: 1 }));
      expect(hookEvents).toEqual(["run:1", "error:1", "shouldRetry:1", "failed:1:Error"]);
      expect(await reload(ds, task)).toMatchObject({ status: "failed", attempts: 1 });
    });

    it("a retry policy gives up on errors it does not retry, and after its own attempt limit", async () => {
      const other = await ds.getRepository(RetryOnTypeError).save(RetryOnTypeError.create({ script: "range-error" }));
      const typed = await ds.getRepository(RetryOnTypeError).save(RetryOnTypeError.create({ script: "type-error" }));
      await processN(RetryOnTypeError, 20, quiet());
      expect(await reload(ds, other)).toMatchObject({ status: "failed", attempts: 1 });
      expect(await reload(ds, typed)).toMatchObject({ status: "failed", attempts: 3 }); // limitAttempts(3) before maxAttempts 10
    });

    it("a hook that throws is logged and recorded, and the task is neither lost nor stuck", async () => {
      const task = await ds.getRepository(ScriptedTask).save(ScriptedTask.create({ script: "hook-throws" }));
      const { logger, lines } = memoryLogger();
      expect(await processN(ScriptedTask, 10, { dataSource: ds, logger })).toEqual(expectedSummary({ processed: 2, retried: 1, failed: 1 }));
      const failed = await reload(ds, task);
      expect(failed.status).toBe("failed");
      expect(failed.errors!.filter((e) => e.hook === "error").map((e) => e.message)).toEqual(["the error hook broke", "the error hook broke"]);
      expect(lines.some((l) => l.level === "error" && l.msg?.includes("error() hook threw"))).toBe(true);
    });

    it("a hook that never settles is given up after hookTimeoutMs: recorded, counted as abandoned, and the task moves on", async () => {
      const task = await ds.getRepository(ScriptedTask).save(ScriptedTask.create({ script: "hook-hangs" }));
      const { logger, lines } = memoryLogger();
      ScriptedTask.holdHooks();
      try {
        const summary = await processN(ScriptedTask, 10, { dataSource: ds, logger, hookTimeoutMs: 200 });
        expect(summary).toEqual(expectedSummary({ processed: 2, retried: 1, failed: 1 }));
        const failed = await reload(ds, task);
        expect(failed.status).toBe("failed");
        expect(failed.errors!.filter((e) => e.hook === "error").map((e) => e.name)).toEqual(["HookTimeoutError", "HookTimeoutError"]);
        expect(lines.some((l) => l.level === "error" && l.msg?.includes("error() hook did not settle in time"))).toBe(true);
        expect(lines.filter((l) => l.msg?.includes("a hook missed its deadline")).length).toBe(2);
      } finally {
        ScriptedTask.releaseHungHooks();
      }
    });

    it("SnoozeTask comes back later without using an attempt, and skips error()", async () => {
      const task = await ds.getRepository(ScriptedTask).save(ScriptedTask.create({ script: "snooze" }));
      expect(await processN(ScriptedTask, 10, quiet())).toEqual(expectedSummary({ processed: 1, snoozed: 1 }));
      expect(hookEvents).toEqual(["run:1"]);
      const snoozed = await reload(ds, task);
      expect(snoozed).toMatchObject({ status: "pending", attempts: 0, lockedBy: null });
      expect(snoozed.runAt.getTime()).toBeGreaterThan(Date.now() + 3_000_000);
    });

    it("a snooze of a fractional number of milliseconds is written like any other", async () => {
      const task = await ds.getRepository(ScriptedTask).save(ScriptedTask.create({ script: "snooze-fraction" }));
      expect(await processN(ScriptedTask, 10, quiet())).toEqual(expectedSummary({ processed: 1, snoozed: 1 }));
      expect(await reload(ds, task)).toMatchObject({ status: "pending", attempts: 0 });
    });

    it("CancelTask stops the task for good, and skips error() and failed()", async () => {
      const task = await ds.getRepository(ScriptedTask).save(ScriptedTask.create({ script: "cancel" }));
      expect(await processN(ScriptedTask, 10, quiet())).toEqual(expectedSummary({ processed: 1, cancelled: 1 }));
      expect(hookEvents).toEqual(["run:1"]);
      const done = await reload(ds, task);
      expect(done).toMatchObject({ status: "cancelled", attempts: 1 });
      expect(done.lastError).toBe("cancelled: not wanted any more");
      expect(done.finishedAt).toBeInstanceOf(Date);
    });

    it("processN keeps going through immediate retries: it never ends while a retried task is ready", async () => {
      // Each retry is written while the worker's next claim may already be in flight (on another
      // connection, so it may even see the retry before this process hears the write is done),
      // and the worker may hold nothing at that moment. processN must look again, not end.
      const poison = await ds.getRepository(ScriptedTask).save(ScriptedTask.create({ script: "fail", maxAttempts: 40 }));
      const result = await processN(ScriptedTask, 100, { ...quiet(), concurrency: 1 });
      expect(result).toEqual(expectedSummary({ processed: 40, retried: 39, failed: 1 }));
      expect(await reload(ds, poison)).toMatchObject({ status: "failed", attempts: 40 });
    });

    it("a poison task ends failed after maxAttempts while other tasks keep flowing", async () => {
      const poison = await ds.getRepository(ScriptedTask).save(ScriptedTask.create({ script: "fail", maxAttempts: 4, priority: 10 }));
      await ds.getRepository(RecordRun).save(Array.from({ length: 30 }, (_, i) => RecordRun.create({ label: `ok${i}` })));
      const result = await processN(BaseTaskEntity, 100, { ...quiet(), concurrency: 4 });
      expect(result).toEqual(expectedSummary({ processed: 34, succeeded: 30, retried: 3, failed: 1 }));
      expect(await reload(ds, poison)).toMatchObject({ status: "failed", attempts: 4 });
      expect(await ds.getRepository(RunLog).count()).toBe(30);
    });
  });

  describe("scheduling", () => {
    it("fluent options set queue, delay and priority at enqueue; the delay counts from the database's clock", async () => {
      const before = Date.now();
      const task = await SendEmail.create({ to: "later@example.com" }).onQueue("urgent").delay(60_000).withPriority(5).withMaxAttempts(7);
      await ds.getRepository(SendEmail).save(task);
      const stored = await reload(ds, task);
      expect(stored).toMatchObject({ queue: "urgent", priority: 5, maxAttempts: 7, status: "pending" });
      expect(stored.runAt.getTime()).toBeGreaterThanOrEqual(before + 59_000);
      expect(stored.runAt.getTime()).toBeLessThan(Date.now() + 61_000);
      expect((await processN(SendEmail, 10, quiet())).processed).toBe(0); // not due yet
    });

    it("an idle worker wakes for a scheduled task when it is due, not at its next poll", async () => {
      const { logger } = memoryLogger();
      const controller = new AbortController();
      await ds.getRepository(RecordRun).save(RecordRun.create({ label: "soon" }).delay(300));
      const done = processForever(RecordRun, { dataSource: ds, logger, signal: controller.signal, pollIntervalMs: 600_000 });
      try {
        await until("the scheduled task ran", async () => (await ds.getRepository(RunLog).count()) === 1, 10_000);
        // And one scheduled while the worker sleeps re-arms its timer (an in-process enqueue).
        await ds.getRepository(RecordRun).save(RecordRun.create({ label: "later" }).delay(300));
        await until("the second scheduled task ran", async () => (await ds.getRepository(RunLog).count()) === 2, 10_000);
      } finally {
        controller.abort();
        await done;
      }
      const [first] = await ds.getRepository(RecordRun).find({ where: { label: "soon" } });
      expect(first.startedAt!.getTime()).toBeGreaterThanOrEqual(first.runAt.getTime());
    });
  });

  describe("timeouts", () => {
    it("a run past its limit fails with TaskTimeoutError, error() sees it, and the retry policy decides", async () => {
      const task = await ds.getRepository(SleepyTask).save(SleepyTask.create({ ms: 60_000 }).withTimeout(100).withMaxAttempts(2));
      const result = await processN(SleepyTask, 1, quiet());
      expect(result).toEqual(expectedSummary({ processed: 1, retried: 1 }));
      expect(SleepyTask.errorsSeen).toHaveLength(1);
      expect(SleepyTask.errorsSeen[0]).toBeInstanceOf(TaskTimeoutError);
      const stored = await reload(ds, task);
      expect(stored).toMatchObject({ status: "pending", attempts: 1 });
      expect(stored.errors![0]).toMatchObject({ name: "TaskTimeoutError", attempt: 1 });
    });

    it("frees the slot when run() ignores its signal, says so, and stops claiming past the cap", async () => {
      await ds.getRepository(SleepyTask).save(Array.from({ length: 3 }, () => SleepyTask.create({ ignoreSignal: true }).withTimeout(50)));
      const { logger, lines } = memoryLogger();
      try {
        // One slot: each hung run must be abandoned for the next task to start at all.
        const worker = processForever(SleepyTask, { dataSource: ds, logger, concurrency: 1, maxAbandonedRuns: 2 });
        await expect(worker).rejects.toThrow(WorkerNeedsRestartError);
      } finally {
        SleepyTask.releaseIgnored();
      }
      expect(lines.filter((l) => l.msg?.includes("ignored its abort signal")).length).toBe(2);
      const statuses = (await ds.getRepository(SleepyTask).find()).map((t) => t.status).sort();
      expect(statuses).toEqual(["failed", "failed", "pending"]); // the third was never claimed
    });
  });

  describe("cancellation", () => {
    it("a pending task is cancelled at once; a finished or unknown one is reported, not an error", async () => {
      const pending = await ds.getRepository(SendEmail).save(SendEmail.create({ to: "cancel@example.com" }));
      expect(await cancelTask(pending.id, { dataSource: ds })).toEqual({ outcome: "cancelled", id: pending.id });
      expect(await reload(ds, pending)).toMatchObject({ status: "cancelled", lastError: "cancelled: cancelled on request" });
      expect((await processN(SendEmail, 10, quiet())).processed).toBe(0);

      const finished = await ds.getRepository(SendEmail).save(SendEmail.create({ to: "done@example.com" }));
      await processN(SendEmail, 10, quiet());
      expect(await cancelTask(finished.id, { dataSource: ds })).toEqual({ outcome: "alreadyFinished", id: finished.id, status: "succeeded" });
      expect(await cancelTask("987654321", { dataSource: ds })).toEqual({ outcome: "notFound", id: "987654321" });
    });

    it("task.cancel() on a running task aborts its signal and it ends cancelled", async () => {
      const task = await ds.getRepository(GateTask).save(GateTask.create({}));
      const { logger } = memoryLogger();
      const working = processN(GateTask, 1, { dataSource: ds, logger });
      await until("task started", () => GateTask.started.length === 1);
      const loaded = await ds.getRepository(GateTask).findOneByOrFail({ id: task.id });
      expect(await loaded.cancel({ reason: "customer left" })).toEqual({ outcome: "cancelRequested", id: task.id });
      const result: ProcessSummary = await working;
      expect(result).toEqual(expectedSummary({ processed: 1, cancelled: 1 }));
      expect(await reload(ds, task)).toMatchObject({ status: "cancelled", lockedBy: null, lastError: "cancelled: customer left" });
      expect(GateTask.abortReasons[0]).toMatchObject({ name: "TaskCancelledError" });
    });

    it("cancels a task running in another process", async () => {
      const task = await ds.getRepository(GateTask).save(GateTask.create({}));
      const worker = spawnWorker({ ORMQ_DATABASE_URL: db.url, ORMQ_TEST_FOREVER: "1" });
      try {
        await worker.ready;
        worker.child.stdin!.write("go\n");
        await until("the other process started the task", async () => (await reload(ds, task)).status === "running", 20_000);
        expect(await cancelTask(task.id, { dataSource: ds })).toMatchObject({ outcome: "cancelRequested" });
        await until("the task ended cancelled", async () => (await reload(ds, task)).status === "cancelled", 10_000);
      } finally {
        worker.child.kill("SIGTERM");
        await worker.exited;
      }
    }, 60_000);
  });

  describe("bad input", () => {
    it("invalid options fail at the call, naming the option", () => {
      expect(() => SendEmail.create({}).delay(-1)).toThrow(/delay\(ms\) must be/);
      expect(() => SendEmail.create({}).onQueue("")).toThrow(InvalidOptionError);
      expect(() => SendEmail.create({}).onQueue("a,b")).toThrow(/onQueue\(queue\)/);
      expect(() => SendEmail.create({}).withMaxAttempts(0)).toThrow(/withMaxAttempts\(n\) must be an integer of 1 or more/);
      expect(() => SendEmail.create({}).runAtTime(new Date("not a date"))).toThrow(/runAtTime\(date\) must be a valid Date/);
      expect(() => SendEmail.create({}).withPriority(1.5)).toThrow(/withPriority/);
    });

    it("invalid values set directly fail at save, naming the field, and write nothing", async () => {
      await expect(ds.getRepository(SendEmail).save(SendEmail.create({ to: "x", queue: "" }))).rejects.toThrow(/SendEmail\.queue must be/);
      await expect(ds.getRepository(SendEmail).save(SendEmail.create({ to: "x", maxAttempts: 0 }))).rejects.toThrow(/SendEmail\.maxAttempts/);
      await expect(ds.getRepository(SendEmail).save(SendEmail.create({ to: "x", runAt: new Date(NaN) }))).rejects.toThrow(/SendEmail\.runAt/);
      expect(await ds.getRepository(BaseTaskEntity).count()).toBe(0);
    });

    it("class-validator constraints are checked for save(), bulk save and insert(), listing every failure", async () => {
      const repo = ds.getRepository(ValidatedEmail);
      const error = await repo.save(ValidatedEmail.create({ address: "not-an-email", subject: "x" })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TaskValidationError);
      expect((error as TaskValidationError).issues.map((i) => i.property).sort()).toEqual(["address", "subject"]);
      expect((error as Error).message).toMatch(/invalid validated_email task: .*address/);

      await expect(repo.save([ValidatedEmail.create({ address: "ok@example.com", subject: "fine" }), ValidatedEmail.create({ address: "bad", subject: "fine" })])).rejects.toThrow(TaskValidationError);
      await expect(repo.insert({ address: "bad", subject: "fine" })).rejects.toThrow(TaskValidationError);
      expect(await repo.count()).toBe(0);

      await repo.save(ValidatedEmail.create({ address: "ok@example.com", subject: "fine" }));
      await ds.getRepository(SendEmail).save(SendEmail.create({ to: "no validators at all" }));
      expect(await ds.getRepository(BaseTaskEntity).count()).toBe(2);
    });

    it("a validation failure inside the application's transaction rolls the whole transaction back", async () => {
      await expect(
        ds.transaction(async (m) => {
          await m.save(m.create(Image, { url: "with-bad-task.png" }));
          await m.save(ValidatedEmail.create({ address: "nope", subject: "hello" }));
        }),
      ).rejects.toThrow(TaskValidationError);
      expect(await ds.getRepository(Image).count()).toBe(0);
      expect(await ds.getRepository(BaseTaskEntity).count()).toBe(0);
    });
  });
});
