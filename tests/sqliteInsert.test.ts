/**
 * A task's INSERT on SQLite. TypeORM reads back after each INSERT the columns that have a database
 * default: a task's own (status, attempts) are set by ormq before the insert, so that read is left
 * out; a child class's defaulted column that the user left unset is still read back. And the
 * INSERT's text is the same at every save (its instants are bound), so its statement is prepared once.
 */
import type { DataSource } from "typeorm";
import { statementLog } from "./support/helpers";
import { EphemeralTask, SendEmail, testEntities } from "./fixtures/tasks";
import { createTestDb, openDataSource, type TestDb } from "./support/db";

describe("the read after a task's insert (sqlite)", () => {
  let db: TestDb;
  let ds: DataSource;
  const { statements: queries, logger } = statementLog();
  beforeAll(async () => {
    db = await createTestDb("sqlite");
    ds = await openDataSource(db, testEntities, { logger, logging: true });
  });
  afterAll(async () => {
    await ds.destroy();
    await db.drop();
  });

  it("status and attempts are not read back, and the entity and the row hold them", async () => {
    await ds.manager.save(SendEmail.create({ to: "first@example.com" })); // the first save prepares the DataSource
    queries.length = 0;
    const task = await ds.manager.save(SendEmail.create({ to: "a@example.com" }));
    expect(queries.filter((q) => /^SELECT/i.test(q))).toEqual([]);
    expect({ status: task.status, attempts: task.attempts }).toEqual({ status: "pending", attempts: 0 });
    const row = await ds.getRepository(SendEmail).findOneByOrFail({ id: task.id });
    expect({ status: row.status, attempts: row.attempts }).toEqual({ status: "pending", attempts: 0 });
  });

  it("two saves send the same INSERT text (instants are bound, not written into it), stored as integers", async () => {
    queries.length = 0;
    const first = await ds.manager.save(SendEmail.create({ to: "b@example.com" }).delay(1_000));
    const second = await ds.manager.save(SendEmail.create({ to: "c@example.com" }).delay(2_000));
    const inserts = queries.filter((q) => /^INSERT/i.test(q));
    expect(inserts).toHaveLength(2);
    expect(inserts[0]).toBe(inserts[1]);
    const rows = await ds.query<{ kind: string; run_at: number }[]>(`SELECT typeof(run_at) AS kind, run_at FROM ormq_tasks WHERE id IN (?, ?) ORDER BY id`, [first.id, second.id]);
    expect(rows.map((r) => r.kind)).toEqual(["integer", "integer"]);
    expect(rows.map((r) => r.run_at)).toEqual([first.runAt.getTime(), second.runAt.getTime()]);
    // And compared as integers by a find.
    await expect(ds.getRepository(SendEmail).findOneBy({ id: second.id, runAt: second.runAt })).resolves.toMatchObject({ id: second.id });
  });

  it("a child class's own column with a default, left unset, is still read back", async () => {
    queries.length = 0;
    const task = await ds.manager.save(EphemeralTask.create({}));
    expect(queries.some((q) => /^SELECT/i.test(q) && q.includes("failUntil"))).toBe(true);
    expect(task.failUntil).toBe(0);
  });
});
