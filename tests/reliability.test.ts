import type { Pool } from "pg";
import type { DataSource } from "typeorm";
import { BaseTaskEntity, processForever, processN } from "../src";
import { rescueExpiredTasks, WorkerEntity } from "../src/admin";
import { GateTask, RecordRun, SleepyTask, testEntities } from "./fixtures/tasks";
import { ormqFor } from "../src";
import { OrmqConfigurationError } from "../src/errors";
import { DatabaseBackoff } from "../src/worker/backoff";
import { WITH_MARIADB, memoryLogger, openDataSource, type TestDb, useTestDatabase } from "./support/db";
import { expectedSummary, reload, until } from "./support/helpers";

describe.each(WITH_MARIADB)("heartbeats and rescue on %s", (dialect) => {
  let db: TestDb;
  let ds: DataSource;

  useTestDatabase(dialect, (opened) => ({ db, ds } = opened), testEntities);
  beforeEach(async () => {
    await ds.query(`DELETE FROM ormq_tasks`);
    await ds.query(`DELETE FROM ormq_task_events`); // no foreign key cascades them
    await ds.query(`DELETE FROM ormq_workers`);
    GateTask.reset();
    SleepyTask.reset();
  });

  /** Makes a task look like its worker died mid-run, its lease already expired. */
  async function orphan(task: { id: string }, attempts: number) {
    await ds.query(
      `UPDATE ormq_tasks SET status = 'running', attempts = ${attempts}, locked_by = 'dead-host/1/gone', locked_until = 1, started_at = 1 WHERE id = ${task.id}`,
    );
  }

  it("rescues a task whose worker died: back to pending with the attempt counted, or failed when out of attempts", async () => {
    const again = await ds.getRepository(RecordRun).save(RecordRun.create({ label: "again" }));
    const spent = await ds.getRepository(RecordRun).save(RecordRun.create({ label: "spent", maxAttempts: 1 }));
    await orphan(again, 1);
    await orphan(spent, 1);
    const rescued = await rescueExpiredTasks({ dataSource: ds, logger: memoryLogger().logger });
    expect(rescued.map((r) => [r.id, r.status]).sort()).toEqual([[again.id, "pending"], [spent.id, "failed"]].sort());

    const back = await reload(ds, again);
    expect(back).toMatchObject({ status: "pending", attempts: 1, lockedBy: null, lockedUntil: null });
    expect(back.lastError).toContain("worker dead-host/1/gone stopped renewing its lease");
    expect(back.errors!.at(-1)).toMatchObject({ name: "WorkerLostError", attempt: 1 });
    expect(await reload(ds, spent)).toMatchObject({ status: "failed" });
    // The rescued task runs again, as its second attempt.
    expect(await processN(RecordRun, 10, { dataSource: ds, logger: memoryLogger().logger })).toEqual(expectedSummary({ processed: 1, succeeded: 1 }));
    expect(await reload(ds, again)).toMatchObject({ status: "succeeded", attempts: 2 });
  });

  it("rescue first, then the late completion of the worker that lost the task: the completion changes nothing", async () => {
    const task = await ds.getRepository(GateTask).save(GateTask.create({}));
    const { logger, lines } = memoryLogger();
    const controller = new AbortController();
    // A long lease and slow heartbeat, so only the test expires it.
    const worker = processForever(GateTask, { dataSource: ds, logger, signal: controller.signal, concurrency: 1, leaseMs: 600_000, heartbeatIntervalMs: 300_000 });
    try {
      await until("task started", () => GateTask.started.length === 1);
      await ds.query(`UPDATE ormq_tasks SET locked_until = 1 WHERE id = ${task.id}`);
      expect((await rescueExpiredTasks({ dataSource: ds, logger })).map((r) => r.id)).toEqual([task.id]);
      GateTask.release!();
      await until("the late completion was refused", () => lines.some((l) => l.msg?.includes("lease was lost")));
      // The rescued task is claimed again and this time finishes normally.
      await until("second attempt succeeded", async () => (await reload(ds, task)).status === "succeeded");
    } finally {
      controller.abort();
      await worker;
    }
    const done = await reload(ds, task);
    expect(done.attempts).toBe(2);
    expect(done.errors!.map((e) => e.name)).toEqual(["WorkerLostError"]);
  });

  it("completion first, then the rescue: the completion stands and the rescue finds nothing", async () => {
    const task = await ds.getRepository(GateTask).save(GateTask.create({}));
    const { logger } = memoryLogger();
    const working = processN(GateTask, 1, { dataSource: ds, logger, leaseMs: 600_000, heartbeatIntervalMs: 300_000 });
    await until("task started", () => GateTask.started.length === 1);
    await ds.query(`UPDATE ormq_tasks SET locked_until = 1 WHERE id = ${task.id}`); // expired, not yet rescued
    GateTask.release!();
    expect(await working).toEqual(expectedSummary({ processed: 1, succeeded: 1 }));
    expect(await rescueExpiredTasks({ dataSource: ds, logger })).toEqual([]);
    expect(await reload(ds, task)).toMatchObject({ status: "succeeded", attempts: 1, errors: [] });
  });

  it("a task that runs longer than the lease while its worker heartbeats is not rescued, and runs once", async () => {
    const task = await ds.getRepository(SleepyTask).save(SleepyTask.create({ ms: 2_500 }));
    const fast = { leaseMs: 600, heartbeatIntervalMs: 150, rescueIntervalMs: 100 };
    const controller = new AbortController();
    // A second worker that rescues eagerly (every worker rescues, whatever queues it takes from).
    const rescuer = processForever(BaseTaskEntity, { dataSource: ds, logger: memoryLogger().logger, signal: controller.signal, queues: ["elsewhere"], ...fast });
    try {
      const result = await processN(SleepyTask, 1, { dataSource: ds, logger: memoryLogger().logger, ...fast });
      expect(result).toEqual(expectedSummary({ processed: 1, succeeded: 1 }));
    } finally {
      controller.abort();
      await rescuer;
    }
    expect(await reload(ds, task)).toMatchObject({ status: "succeeded", attempts: 1, errors: [] });
  });

  // PostgreSQL only: SQLite locks the file, not a row.
  if (dialect === "postgres") {
    it("a task row another transaction holds for half a lease: the heartbeat goes on for the rest and says so once; renewed when free", async () => {
      const [held, other] = await ds.getRepository(GateTask).save([GateTask.create({}), GateTask.create({})]);
      const { logger, lines } = memoryLogger();
      const controller = new AbortController();
      const worker = processForever(GateTask, { dataSource: ds, logger, signal: controller.signal, concurrency: 2, leaseMs: 1_200, heartbeatIntervalMs: 150 });
      const holder = ds.createQueryRunner();
      const leaseOf = async (id: string) => Number((await ds.query(`SELECT locked_until FROM ormq_tasks WHERE id = ${id}`))[0].locked_until);
      try {
        await until("both running", () => GateTask.started.length === 2);
        await holder.startTransaction();
        await holder.query(`UPDATE ormq_tasks SET updated_at = updated_at WHERE id = ${held.id}`);
        const warned = () => lines.filter((l) => l.level === "warn" && /held this task's row for half a lease/.test(l.msg ?? ""));
        await until("the warning", () => warned().length > 0);
        expect(warned()[0].obj).toMatchObject({ taskId: held.id });
        // The other task's lease went on being renewed meanwhile.
        const before = await leaseOf(other.id);
        await until("the other lease renewed again", async () => (await leaseOf(other.id)) > before);
        await holder.commitTransaction();
        const stale = await leaseOf(held.id);
        await until("the held one renewed once free", async () => (await leaseOf(held.id)) > stale);
        expect(warned()).toHaveLength(1);
        expect(lines.filter((l) => l.level === "warn" && /no longer holding/.test(l.msg ?? ""))).toEqual([]);
      } finally {
        if (holder.isTransactionActive) await holder.rollbackTransaction();
        await holder.release();
        GateTask.release!();
        controller.abort();
        await worker;
      }
    });
  }

  it("a worker registers itself, heartbeats, and is marked stopped on a graceful stop", async () => {
    await ds.getRepository(RecordRun).save(RecordRun.create({ label: "w" }));
    await processN(RecordRun, 1, { dataSource: ds, logger: memoryLogger().logger });
    const [worker] = await ds.getRepository(WorkerEntity).find();
    expect(worker).toMatchObject({ name: "RecordRun", pid: process.pid, state: "stopped", queues: null });
    expect(worker.stoppedAt).toBeInstanceOf(Date);
    expect(worker.lastHeartbeatAt.getTime()).toBeGreaterThanOrEqual(worker.startedAt.getTime());
  });
});

describe("postgres: connections the server ends", () => {
  let ds: DataSource;
  useTestDatabase("postgres", (opened) => ({ ds } = opened), testEntities);

  it("no pooled client is ever without an error listener, so a late error cannot crash the process", async () => {
    // A connection the server ends can emit `error` twice; TypeORM drops its listener after the
    // first (see src/dialect/postgres/poolGuard.ts). Seen as a worker crash in the restart chaos test.
    const pool = (ds.driver as unknown as { master: Pool }).master;
    const before = await pool.connect(); // opened before ormq saw the DataSource
    before.release();
    ormqFor(ds).prepare(); // what every ormq entry point (save, enqueueMany, a worker) does first
    const clients = await Promise.all([pool.connect(), pool.connect()]); // one reused, one new
    try {
      // Checked out, pg-pool's own idle listener is off: only ormq's is left.
      for (const client of clients) expect(client.listenerCount("error")).toBe(1);
    } finally {
      for (const client of clients) client.release();
    }
  });
});

describe("postgres: the database fails after the worker registered", () => {
  let db: TestDb;
  let ds: DataSource;
  useTestDatabase("postgres", (opened) => ({ db, ds } = opened), testEntities);

  it("a long-running worker whose start-up reads fail keeps trying, and starts when they succeed", async () => {
    // What a restart between registering and the first claim looks like to the worker, made
    // deterministic: the worker's role may register but not read the queue controls until granted.
    const role = `ormq_start_${process.pid}_${Date.now()}`;
    await ds.query(`CREATE ROLE ${role} LOGIN PASSWORD 'start'`);
    await ds.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`);
    await ds.query(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${role}`);
    await ds.query(`REVOKE SELECT ON ormq_controls FROM ${role}`);
    const url = new URL(db.url);
    url.username = role;
    url.password = "start";
    const limited = await openDataSource({ ...db, url: url.toString() }, testEntities, { migrationsRun: false }, false);
    const { logger, lines } = memoryLogger();
    const stop = new AbortController();
    try {
      const running = processForever(RecordRun, { dataSource: limited, logger, signal: stop.signal });
      await until("the worker retried its start", () => lines.some((l) => l.msg === "reading the queue controls failed; retrying"));
      const task = await ds.getRepository(RecordRun).save(RecordRun.create({ label: "after the outage" }));
      await ds.query(`GRANT SELECT ON ormq_controls TO ${role}`);
      await until("the task ran", async () => (await reload(ds, task)).status === "succeeded");
      stop.abort();
      expect(await running).toMatchObject({ succeeded: 1, failed: 0 });
    } finally {
      stop.abort();
      await limited.destroy();
      await ds.query(`DROP OWNED BY ${role}`);
      await ds.query(`DROP ROLE ${role}`);
    }
  });
});

describe("waiting out a database that is down", () => {
  it("a script gives up after five failures in a row, a long-running worker never; neither waits out a configuration error", () => {
    const down = new Error("connection refused");
    const script = new DatabaseBackoff(true);
    const delays = Array.from({ length: 5 }, () => script.failed(down));
    expect(delays).toEqual([200, 400, 800, 1_600, 3_200]);
    expect(() => script.failed(down)).toThrow(down);
    script.succeeded();
    expect(script.failed(down)).toBe(200); // the count is of failures in a row

    const forever = new DatabaseBackoff(false);
    const longRun = Array.from({ length: 50 }, () => forever.failed(down));
    expect(Math.max(...longRun)).toBe(5_000);
    const config = new OrmqConfigurationError("run ormq's migrations");
    expect(() => forever.failed(config)).toThrow(config);
  });
});
