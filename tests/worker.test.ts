import { Client } from "pg";
import { ChildEntity, DataSource } from "typeorm";
import {
  BaseTaskEntity,
  OrmqConfigurationError,
  processForever,
  processN,
  TaskDefinitionError,
  WorkerShutdownError,
  type ProcessSummary,
} from "../src";
import { GateTask, RecordRun, RunLog, SendEmail, testEntities } from "./fixtures/tasks";
import { createTestDb, WITH_MARIADB, memoryLogger, openDataSource, type TestDb, useTestDatabase } from "./support/db";
import { concerns } from "../src/client/announcements";
import { expectedSummary, reload, until } from "./support/helpers";

describe.each(WITH_MARIADB)("worker on %s", (dialect) => {
  let db: TestDb;
  let ds: DataSource;

  useTestDatabase(dialect, (opened) => ({ db, ds } = opened), testEntities);
  beforeEach(async () => {
    await ds.query(`DELETE FROM ormq_tasks`);
    await ds.query(`DELETE FROM ormq_task_events`); // no foreign key cascades them
    await ds.query(`DELETE FROM test_runs`);
    GateTask.reset();
  });

  /** Starts processForever in the background; `stop()` aborts it and resolves with its summary. */
  function startWorker(cls: typeof BaseTaskEntity, options: Record<string, unknown> = {}) {
    const controller = new AbortController();
    const log = memoryLogger();
    const done: Promise<ProcessSummary> = processForever(cls, {
      dataSource: ds,
      logger: log.logger,
      signal: controller.signal,
      ...options,
    });
    return { done, log, stop: () => (controller.abort(), done) };
  }

  describe("wake-ups", () => {
    it("an enqueue in this process wakes an idle worker at once, not at the next poll", async () => {
      const worker = startWorker(RecordRun, { pollIntervalMs: 600_000 });
      try {
        // Let the worker finish a task first, so it is asleep when the next one arrives.
        await ds.getRepository(RecordRun).save(RecordRun.create({ label: "first" }));
        await until("first task ran", async () => (await ds.getRepository(RunLog).count()) === 1);
        await ds.getRepository(RecordRun).save(RecordRun.create({ label: "second" }));
        await until("second task ran after a wake-up", async () => (await ds.getRepository(RunLog).count()) === 2, 5_000);
      } finally {
        await worker.stop();
      }
    });

    it("an enqueue through another connection wakes it too (NOTIFY, or SQLite's change check)", async () => {
      const other = await openDataSource(db, testEntities, { migrationsRun: false });
      const worker = startWorker(RecordRun, { pollIntervalMs: 600_000 });
      try {
        await ds.getRepository(RecordRun).save(RecordRun.create({ label: "first" }));
        await until("first task ran", async () => (await ds.getRepository(RunLog).count()) === 1);
        await other.getRepository(RecordRun).save(other.getRepository(RecordRun).create({ label: "from elsewhere" }));
        await until("task from another connection ran", async () => (await ds.getRepository(RunLog).count()) === 2, 5_000);
      } finally {
        await worker.stop();
        await other.destroy();
      }
    });

    if (dialect === "postgres") {
      it("sends one NOTIFY per committed transaction, after its commit, and none on rollback", async () => {
        const listener = new Client({ connectionString: db.url });
        await listener.connect();
        const received: string[] = [];
        listener.on("notification", (n) => received.push(n.payload ?? ""));
        await listener.query("LISTEN ormq_tasks");
        try {
          await ds.transaction(async (m) => {
            await m.save(Array.from({ length: 100 }, (_, i) => SendEmail.create({ to: `bulk${i}` })));
            await m.save(RecordRun.create({ label: "other queue" }));
          });
          await expect(
            ds.transaction(async (m) => {
              await m.save(SendEmail.create({ to: "never" }));
              throw new Error("rollback");
            }),
          ).rejects.toThrow("rollback");
          await ds.getRepository(SendEmail).save(SendEmail.create({ to: "single" }));
          // A round trip on the listening connection delivers anything already sent.
          await listener.query("SELECT 1");
          await until("notifications arrive", () => received.length >= 2, 2_000);
          await listener.query("SELECT 1");
          // Each names the queues and types it committed, so that only their workers wake. (Sent
          // on pooled connections after each commit: they may arrive in either order.)
          const payloads = received.map((p) => JSON.stringify((JSON.parse(p) as { tasks: string[] }).tasks.sort())).sort();
          expect(payloads).toEqual([JSON.stringify(["emails/send_email"]), JSON.stringify(["emails/send_email", "records/record_run"])].sort());
        } finally {
          await listener.end();
        }
      });
    }
  });

  describe("shutdown", () => {
    it("lets running tasks finish within the grace period", async () => {
      const tasks = await ds.getRepository(GateTask).save([GateTask.create({}), GateTask.create({})]);
      const worker = startWorker(GateTask, { gracePeriodMs: 30_000 });
      await until("both tasks started", () => GateTask.started.length === 2);
      const stopping = worker.stop();
      GateTask.release!();
      expect(await stopping).toEqual(expectedSummary({ processed: 2, succeeded: 2, failed: 0, retried: 0 }));
      for (const t of tasks) expect((await reload(ds, t)).status).toBe("succeeded");
    });

    it("after the grace period aborts the tasks' signal and hands them back, attempts restored", async () => {
      const task = await ds.getRepository(GateTask).save(GateTask.create({}));
      const worker = startWorker(GateTask, { gracePeriodMs: 50 });
      await until("task started", () => GateTask.started.length === 1);
      const summary = await worker.stop();
      expect(summary.processed).toBe(0);
      expect(await reload(ds, task)).toMatchObject({ status: "pending", attempts: 0, lockedBy: null, errors: [] });
      expect(worker.log.lines.some((l) => l.msg?.includes("aborting running tasks"))).toBe(true);
    });

    it("hands back a task whose run() ignores the abort, and says so", async () => {
      const task = await ds.getRepository(GateTask).save(GateTask.create({ ignoreAbort: true }));
      const worker = startWorker(GateTask, { gracePeriodMs: 50 });
      await until("task started", () => GateTask.started.length === 1);
      await worker.stop();
      expect(await reload(ds, task)).toMatchObject({ status: "pending", attempts: 0, lockedBy: null });
      expect(worker.log.lines.some((l) => l.level === "warn" && l.msg?.includes("ignored its abort signal"))).toBe(true);
      GateTask.release!(); // the abandoned promise settles later; its outcome must change nothing
      await new Promise((r) => setImmediate(r));
      expect(await reload(ds, task)).toMatchObject({ status: "pending", attempts: 0 });
    });

    it("the abort reason is a WorkerShutdownError", async () => {
      await ds.getRepository(GateTask).save(GateTask.create({}));
      const worker = startWorker(GateTask, { gracePeriodMs: 10 });
      await until("task started", () => GateTask.started.length === 1);
      await worker.stop();
      expect(GateTask.abortReasons).toHaveLength(1);
      expect(GateTask.abortReasons[0]).toBeInstanceOf(WorkerShutdownError);
    });
  });

  describe("guards", () => {
    it("a late completion from a worker that lost the task changes nothing", async () => {
      const task = await ds.getRepository(GateTask).save(GateTask.create({}));
      const worker = startWorker(GateTask);
      await until("task started", () => GateTask.started.length === 1);
      // Someone else takes the task over (as a rescue would) while it still runs here.
      // (Due later, so this worker does not simply claim it again.)
      const later = Date.now() + 3_600_000;
      await ds.query(`UPDATE ormq_tasks SET status = 'pending', locked_by = NULL, locked_until = NULL, run_at = ${later} WHERE id = ${task.id}`);
      GateTask.release!();
      await until("the worker noticed", () => worker.log.lines.some((l) => l.msg?.includes("lease was lost")));
      const summary = await worker.stop();
      expect(summary.processed).toBe(0);
      expect(await reload(ds, task)).toMatchObject({ status: "pending", lockedBy: null, result: null });
    });
  });

  describe("start-up errors", () => {
    it("rejects bad options with a message that names the option", async () => {
      await expect(processN(RecordRun, 1, { dataSource: ds, concurrency: 0 })).rejects.toThrow(/`concurrency` must be an integer from 1 to 100000/);
      await expect(processN(RecordRun, 1, { dataSource: ds, queues: [] })).rejects.toThrow(OrmqConfigurationError);
      await expect(processN(RecordRun, 1, { dataSource: ds, queues: [""] })).rejects.toThrow(/`queues`/);
      await expect(processN(RecordRun, -1, { dataSource: ds })).rejects.toThrow(/n must be/);
    });
  });
});

@ChildEntity()
class NoKeyTask extends BaseTaskEntity {
  run() {
    return null;
  }
}

describe("task definitions (SQLite)", () => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb("sqlite");
  });
  afterAll(async () => {
    await db?.drop();
  });

  it("a task class without an explicit discriminator key is a clear error at start-up and at enqueue", async () => {
    const ds = await openDataSource(db, [...testEntities, NoKeyTask]);
    try {
      await expect(processN(BaseTaskEntity, 1, { dataSource: ds })).rejects.toThrow(TaskDefinitionError);
      await expect(processN(RecordRun, 1, { dataSource: ds })).rejects.toThrow(/NoKeyTask has no discriminator key/);
      await expect(ds.getRepository(RecordRun).save(RecordRun.create({ label: "x" }))).rejects.toThrow(/NoKeyTask/);
    } finally {
      await ds.destroy();
    }
  });

  it("a DataSource without ormq's subscriber is told how to fix it", async () => {
    const ds = await openDataSource(db, testEntities, { subscribers: [], migrationsRun: false });
    try {
      await expect(processN(RecordRun, 1, { dataSource: ds })).rejects.toThrow(/add \.\.\.ormqSubscribers/);
      // At enqueue too, before anything is written (not a NOT NULL failure from the database).
      const before = Number((await ds.query(`SELECT COUNT(*) AS n FROM ormq_tasks`))[0].n);
      const save = ds.getRepository(RecordRun).save(RecordRun.create({ label: "no subscriber" }));
      await expect(save).rejects.toBeInstanceOf(OrmqConfigurationError);
      await expect(save).rejects.toThrow(/subscriber is not registered on this DataSource.*add \.\.\.ormqSubscribers/);
      expect(Number((await ds.query(`SELECT COUNT(*) AS n FROM ormq_tasks`))[0].n)).toBe(before);
    } finally {
      await ds.destroy();
    }
  });

  it("an in-memory SQLite database is refused for a worker, with the reason", async () => {
    const ds = await openDataSource({ ...db, url: ":memory:" }, testEntities);
    try {
      await expect(processN(RecordRun, 1, { dataSource: ds })).rejects.toThrow(/needs a database file/);
    } finally {
      await ds.destroy();
    }
  });
});

describe("which announcements wake a worker", () => {
  const types = new Set(["send_email", "record_run"]);
  it("its own types, in its queues", () => {
    expect(concerns(["emails/send_email"], types, null)).toBe(true);
    expect(concerns(["default/resize", "records/record_run"], types, ["records"])).toBe(true);
  });
  it("not another type's tasks, nor its own in a queue it does not take", () => {
    expect(concerns(["default/resize", "default/thumbnail"], types, null)).toBe(false);
    expect(concerns(["emails/send_email"], types, ["records"])).toBe(false);
  });
  it("anything it cannot read: an unknown announcement wakes it", () => {
    expect(concerns(null, types, ["records"])).toBe(true);
    expect(concerns([], types, null)).toBe(true);
    expect(concerns(["no-slash"], types, null)).toBe(true);
    // A type key may contain a slash; the queue name cannot.
    expect(concerns(["q/a/b"], new Set(["a/b"]), ["q"])).toBe(true);
  });
});
