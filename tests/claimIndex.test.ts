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
      const indexSql = async (name: string) => ((await ds.query(`SELECT sql FROM sqlite_master WHERE name = ?`, [name])) as { sql: string }[])[0].sql;
      const claimIndex = () => indexSql("ormq_tasks_claim");
      expect(await claimIndex()).not.toMatch(/DESC/);
      expect(await indexSql("ormq_tasks_fair")).not.toMatch(/DESC/);
      await RecordRun.create({ label: "after the rebuild" }).save();
      const { logger, lines } = memoryLogger();
      expect((await processN(RecordRun, 1, { dataSource: ds, logger })).succeeded).toBe(1);
      expect(await claimIndex()).toMatch(/"priority" DESC, "run_at", "id"\) WHERE status = 'pending'/);
      // The fair claim's index too (the same ORDER BY, behind a type and a key).
      expect(await indexSql("ormq_tasks_fair")).toMatch(/\("type", "fair_key", "priority" DESC, "run_at", "id"\) WHERE status = 'pending' AND fair_key IS NOT NULL/);
      expect(lines.filter((l) => /recreated the index with priority DESC/.test(l.msg ?? "")).map((l) => (l.obj as { index?: string }).index)).toEqual(["ormq_tasks_claim", "ormq_tasks_fair"]);
    } finally {
      await ds.destroy();
      await db.drop();
    }
  });
});
