import type { DataSource, EntityMetadata } from "typeorm";
import { taskSaveOptions } from "../src/tasks/saveOptions";
import { BaseTaskEntity, enqueueMany, InvalidOptionError, processForever, TaskDefinitionError, TaskValidationError } from "../src";
import { QuietTask, RecordRun, RunLog, SendEmail, ValidatedEmail, testEntities } from "./fixtures/tasks";
import { WITH_MARIADB, memoryLogger, openDataSource, type TestDb, useTestDatabase } from "./support/db";
import { statementLog, until } from "./support/helpers";

describe.each(WITH_MARIADB)("enqueueMany on %s", (dialect) => {
  let ds: DataSource;
  useTestDatabase(dialect, (opened) => ({ ds } = opened), testEntities);
  beforeEach(async () => {
    await ds.query(`DELETE FROM ormq_task_events`);
    await ds.query(`DELETE FROM ormq_tasks`);
    await ds.query(`DELETE FROM ormq_task_events`); // no foreign key cascades them
    await ds.query(`DELETE FROM test_runs`);
  });

  const taskCount = async () => Number((await ds.query(`SELECT COUNT(*) AS n FROM ormq_tasks`))[0].n);

  it("inserts many tasks of several classes with save()'s defaults, and returns their ids in order", async () => {
    // More rows than fit in one statement under the bind-parameter limit.
    const tasks: BaseTaskEntity[] = Array.from({ length: 5_000 }, (_, i) =>
      i % 2 === 0 ? SendEmail.create({ to: `user${i}@example.com` }) : RecordRun.create({ label: `r${i}` }),
    );
    tasks[10].withPriority(7).onQueue("urgent");
    tasks[11].delay(60_000);
    const before = Date.now();
    const ids = await enqueueMany(tasks, { dataSource: ds });
    expect(ids).toHaveLength(5_000);
    expect(ids).toEqual(tasks.map((t) => t.id));
    expect(new Set(ids).size).toBe(5_000);
    expect(await taskCount()).toBe(5_000);
    const email = (await ds.getRepository(BaseTaskEntity).findOneByOrFail({ id: ids[0] })) as SendEmail;
    expect(email).toBeInstanceOf(SendEmail);
    expect(email).toMatchObject({ to: "user0@example.com", queue: "emails", maxAttempts: 3, status: "pending", attempts: 0, priority: 0 });
    expect(Math.abs(email.runAt.getTime() - before)).toBeLessThan(5_000);
    const record = (await ds.getRepository(BaseTaskEntity).findOneByOrFail({ id: ids[1] })) as RecordRun;
    expect(record).toBeInstanceOf(RecordRun);
    expect(record).toMatchObject({ label: "r1", queue: "records", maxAttempts: 5 });
    expect(await ds.getRepository(BaseTaskEntity).findOneByOrFail({ id: ids[10] })).toMatchObject({ priority: 7, queue: "urgent" });
    const delayed = await ds.getRepository(BaseTaskEntity).findOneByOrFail({ id: ids[11] });
    expect(delayed.runAt.getTime() - delayed.createdAt.getTime()).toBe(60_000);
    // The enqueue writes the rows and nothing else: a task's history starts at its created_at.
    const events = await ds.query(`SELECT COUNT(*) AS n FROM ormq_task_events`);
    expect(Number(events[0].n)).toBe(0);
  });

  it("identical tasks (one value per column, sent once each) still make one row each", async () => {
    const ids = await enqueueMany(Array.from({ length: 3 }, () => RecordRun.create({ label: "same" })), { dataSource: ds });
    const rows = await ds.getRepository(RecordRun).find({ order: { id: "ASC" } });
    expect(rows.map((r) => [r.id, r.label, r.status])).toEqual(ids.map((id) => [id, "same", "pending"]));
  });

  it("rejects bad input before writing anything", async () => {
    const good = () => Array.from({ length: 3_000 }, () => RecordRun.create({}));
    const badQueue = good();
    (badQueue[2_500] as { queue: string }).queue = "no spaces allowed";
    await expect(enqueueMany(badQueue, { dataSource: ds })).rejects.toThrow(InvalidOptionError);
    const invalid = [...good(), ValidatedEmail.create({ address: "not an email", subject: "hello" })];
    await expect(enqueueMany(invalid, { dataSource: ds })).rejects.toThrow(TaskValidationError);
    const plain = [...good(), { label: "plain object" } as unknown as BaseTaskEntity];
    await expect(enqueueMany(plain, { dataSource: ds })).rejects.toThrow(TaskDefinitionError);
    const saved = await ds.getRepository(RecordRun).save(RecordRun.create({}));
    await expect(enqueueMany([...good(), saved], { dataSource: ds })).rejects.toThrow(/already saved/);
    expect(await taskCount()).toBe(1);
  });

  if (dialect === "postgres") {
    it("a row the database refuses in a later statement rolls back the earlier ones", async () => {
      const tasks = Array.from({ length: 12_000 }, () => RecordRun.create({}));
      tasks[11_500].label = "x".repeat(300); // varchar(255): refused, not truncated
      await expect(enqueueMany(tasks, { dataSource: ds })).rejects.toThrow(/too long/);
      expect(await taskCount()).toBe(0);
    });
  }

  it("joins the application's transaction: commits and rolls back with its own writes", async () => {
    await expect(
      ds.transaction(async (manager) => {
        await manager.insert(RunLog, { taskId: "app", worker: "app", attempt: 0 });
        await enqueueMany([RecordRun.create({}), RecordRun.create({})], { manager });
        throw new Error("the application changes its mind");
      }),
    ).rejects.toThrow(/changes its mind/);
    expect(await taskCount()).toBe(0);
    expect(await ds.getRepository(RunLog).count()).toBe(0);
    await ds.transaction(async (manager) => {
      await manager.insert(RunLog, { taskId: "app", worker: "app", attempt: 0 });
      await enqueueMany([RecordRun.create({}), RecordRun.create({})], { manager });
    });
    expect(await taskCount()).toBe(2);
    expect(await ds.getRepository(RunLog).count()).toBe(1);
  });

  it("wakes an idle worker when it commits", async () => {
    const controller = new AbortController();
    const worker = processForever(RecordRun, { dataSource: ds, pollIntervalMs: 600_000, signal: controller.signal, logger: memoryLogger().logger });
    try {
      await ds.getRepository(RecordRun).save(RecordRun.create({ label: "first" }));
      await until("first task ran", async () => (await ds.getRepository(RunLog).count()) === 1);
      await enqueueMany([RecordRun.create({ label: "second" }), RecordRun.create({ label: "third" })], { dataSource: ds });
      await until("enqueued tasks ran after a wake-up", async () => (await ds.getRepository(RunLog).count()) === 3, 5_000);
    } finally {
      controller.abort();
      await worker;
    }
  });
});

describe.each(WITH_MARIADB)("save() of one task on %s", (dialect) => {
  let db: TestDb;
  let mainDs: DataSource;
  useTestDatabase(dialect, (opened) => ({ db, ds: mainDs } = opened), testEntities);

  // PostgreSQL and MySQL: three round trips; SQLite's are in-process calls, and TypeORM reads the
  // new row's generated columns back with a SELECT there. No statement of ormq's own in any.
  // MySQL has no NOTIFY: its workers poll (see docs/mysql.md).
  const server = dialect !== "sqlite";
  it("is TypeORM's statements alone in autocommit (PostgreSQL and MySQL: START TRANSACTION, INSERT, COMMIT), and the NOTIFY follows on its own", async () => {
    const { statements, logger: counting } = statementLog();
    const ds = await openDataSource(db, testEntities, { logging: ["query"], logger: counting, migrationsRun: false });
    try {
      await ds.getRepository(SendEmail).save(SendEmail.create({ to: "warm@example.com" })); // measures the clock once
      await new Promise((resolve) => setImmediate(resolve)); // its NOTIFY
      statements.length = 0;
      const task = await ds.getRepository(SendEmail).save(SendEmail.create({ to: "one@example.com" }));
      expect(task.id).toBeDefined();
      const ownStatements = statements.map((s) => s.trim().split(/\s+/)[0].toUpperCase());
      expect(ownStatements).toEqual(server ? ["START", "INSERT", "COMMIT"] : ["BEGIN", "INSERT", "COMMIT"]); // no read-back of status and attempts (see dialect/sqlite/insertReread.ts)
      const count = ownStatements.length;
      await until("the NOTIFY", () => statements.length > count || dialect !== "postgres");
      expect(statements.slice(count)).toEqual(dialect === "postgres" ? [expect.stringContaining("pg_notify")] : []);
      await new Promise((resolve) => setImmediate(resolve));

      // task.save(): on PostgreSQL and MySQL one autocommitted INSERT; a transaction when asked for, and on
      // SQLite (TypeORM's one connection, which another caller's transaction may hold).
      SendEmail.useDataSource(ds);
      const kinds = async (save: () => Promise<unknown>) => {
        statements.length = 0;
        await save();
        return statements.map((s) => s.trim().split(/\s+/)[0].toUpperCase()).filter((k) => k !== "SELECT" || dialect === "sqlite");
      };
      const one = server ? ["INSERT"] : ["BEGIN", "INSERT", "COMMIT"];
      expect(await kinds(() => SendEmail.create({ to: "two@example.com" }).save())).toEqual(one);
      const wrapped = server ? ["START", "INSERT", "COMMIT"] : ["BEGIN", "INSERT", "COMMIT"];
      expect(await kinds(() => SendEmail.create({ to: "three@example.com" }).save({ transaction: true }))).toEqual(wrapped);
      const stored = await ds.getRepository(SendEmail).find({ order: { id: "ASC" } });
      expect(stored.map((t) => t.to)).toEqual(["warm@example.com", "one@example.com", "two@example.com", "three@example.com"]);
    } finally {
      await ds.destroy();
    }
  });

  it("keeps the transaction for a task class with a cascading relation", () => {
    const plain = mainDs.getMetadata(SendEmail);
    // The same class's metadata with one relation made cascading.
    const cascading = { ...plain, relations: [{ isCascadeInsert: true }] } as unknown as EntityMetadata;
    expect(taskSaveOptions(mainDs, cascading, undefined)).toBeUndefined();
    expect(taskSaveOptions(mainDs, plain, { transaction: true })).toEqual({ transaction: true });
    expect(taskSaveOptions(mainDs, plain, undefined)).toEqual(server ? { transaction: false } : undefined);
  });
});
