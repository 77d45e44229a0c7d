import type { DataSource } from "typeorm";
import { processN, processOne } from "../src";
import { RecordRun, RunLog, SendEmail, testEntities } from "./fixtures/tasks";
import { createTestDb, DIALECTS, memoryLogger, openDataSource, type TestDb } from "./support/db";

describe.each(DIALECTS)("smoke on %s", (dialect) => {
  let db: TestDb;
  let ds: DataSource;
  beforeAll(async () => {
    db = await createTestDb(dialect);
    ds = await openDataSource(db, testEntities);
  });
  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  it("enqueues and runs", async () => {
    const t = await SendEmail.create({ to: "a@b" }).save();
    console.log(t);
    const { logger, lines } = memoryLogger();
    const one = await processOne(SendEmail, { dataSource: ds, logger });
    console.log(one, lines);
    await RecordRun.create({ label: "x" }).save();
    const s = await processN(RecordRun, 5, { dataSource: ds, logger });
    console.log(s, await ds.getRepository(RunLog).find());
  });
});
