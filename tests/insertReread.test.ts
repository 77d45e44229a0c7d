/**
 * On SQLite, TypeORM reads back after each INSERT the columns that have a database default. A
 * task's own (status, attempts) are set by ormq before the insert, so that read is left out; a
 * child class's defaulted column that the user left unset is still read back.
 */
import type { DataSource } from "typeorm";
import type { Logger as TypeOrmLogger } from "typeorm";
import { EphemeralTask, SendEmail, testEntities } from "./fixtures/tasks";
import { createTestDb, openDataSource, type TestDb } from "./support/db";

describe("the read after a task's insert (sqlite)", () => {
  let db: TestDb;
  let ds: DataSource;
  const queries: string[] = [];
  const logger: TypeOrmLogger = {
    logQuery: (query) => void queries.push(query),
    logQueryError: () => {},
    logQuerySlow: () => {},
    logSchemaBuild: () => {},
    logMigration: () => {},
    log: () => {},
  };
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

  it("a child class's own column with a default, left unset, is still read back", async () => {
    queries.length = 0;
    const task = await ds.manager.save(EphemeralTask.create({}));
    expect(queries.some((q) => /^SELECT/i.test(q) && q.includes("failUntil"))).toBe(true);
    expect(task.failUntil).toBe(0);
  });
});
