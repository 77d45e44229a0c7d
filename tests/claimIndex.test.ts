/**
 * The claim index on SQLite after TypeORM rebuilt the tasks table (synchronize adding a task
 * class's columns): its priority DESC, which decorators cannot say, is lost, and a worker puts it
 * back. (In a file of its own: importing task classes adds their columns to every DataSource.)
 */
import { processN } from "../src";
import { RecordRun, testEntities } from "./fixtures/tasks";
import { createTestDb, memoryLogger, openDataSource } from "./support/db";

describe("the claim index after a SQLite table rebuild", () => {
  it("a worker puts back priority DESC when synchronize rebuilt the table to add a task class's columns", async () => {
    const db = await createTestDb("sqlite");
    // Migrations, then synchronize with task classes that have columns: TypeORM rebuilds the
    // table and recreates the indexes from the decorators, without DESC.
    const ds = await openDataSource(db, testEntities);
    try {
      const claimIndex = async () => ((await ds.query(`SELECT sql FROM sqlite_master WHERE name = 'ormq_tasks_claim'`)) as { sql: string }[])[0].sql;
      expect(await claimIndex()).not.toMatch(/DESC/);
      await RecordRun.create({ label: "after the rebuild" }).save();
      const { logger, lines } = memoryLogger();
      expect((await processN(RecordRun, 1, { dataSource: ds, logger })).succeeded).toBe(1);
      expect(await claimIndex()).toMatch(/"priority" DESC, "run_at", "id"\) WHERE status = 'pending'/);
      expect(lines.some((l) => /recreated the claim index/.test(l.msg ?? ""))).toBe(true);
    } finally {
      await ds.destroy();
      await db.drop();
    }
  });
});
