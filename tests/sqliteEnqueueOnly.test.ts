/**
 * A process that only enqueues on SQLite (a web server: each request saves a task in a
 * transaction of its own, and no worker runs there). TypeORM has one connection per SQLite
 * DataSource, and every save() runs in a transaction, so the guard on that connection cannot wait
 * for a moment outside one: it is installed when TypeORM makes the connection's query runner.
 */
import Database from "better-sqlite3";
import type { DataSource } from "typeorm";
import { SendEmail, testEntities } from "./fixtures/tasks";
import { createTestDb, openDataSource, type TestDb } from "./support/db";
import { inOwnFlow } from "./support/helpers";

describe("a process that only enqueues on sqlite", () => {
  let db: TestDb;
  let ds: DataSource;
  beforeEach(async () => {
    db = await createTestDb("sqlite");
    ds = await openDataSource(db, testEntities);
  });
  afterEach(async () => {
    await ds.destroy();
    await db.drop();
  });

  it("concurrent transactions each keep their own: one that rolls back takes no other's task with it", async () => {
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        inOwnFlow(() =>
          ds.transaction(async (m) => {
            await m.save(SendEmail.create({ to: `r${i}@example.com` }));
            if (i === 0) {
              // Still open while the others start.
              await new Promise((resolve) => setTimeout(resolve, 30));
              throw new Error("request 0 fails");
            }
          }),
        ),
      ),
    );
    expect(outcomes.map((o) => o.status)).toEqual(["rejected", ...Array<string>(19).fill("fulfilled")]);
    const saved = await ds.getRepository(SendEmail).find();
    expect(saved.map((t) => t.to).sort()).toEqual(Array.from({ length: 19 }, (_, i) => `r${i + 1}@example.com`).sort());
  });

  it("a transaction that reads before it saves holds the write lock from its BEGIN: another connection's write waits for it", async () => {
    const other = new Database(db.url, { timeout: 0 });
    try {
      other.exec("CREATE TABLE IF NOT EXISTS elsewhere (x INTEGER)");
      let othersWrite: string | null = null;
      await ds.transaction(async (m) => {
        await m.getRepository(SendEmail).count(); // a read: the transaction's snapshot
        try {
          other.exec("INSERT INTO elsewhere VALUES (1)");
          othersWrite = "went in";
        } catch (err) {
          othersWrite = (err as { code?: string }).code ?? String(err);
        }
        // Had the other write gone in, this insert could not turn the read into a write:
        // SQLITE_BUSY_SNAPSHOT at once, whatever the busy timeout.
        await m.save(SendEmail.create({ to: "after-a-read@example.com" }));
      });
      expect(othersWrite).toBe("SQLITE_BUSY");
      expect(await ds.getRepository(SendEmail).countBy({ to: "after-a-read@example.com" })).toBe(1);
    } finally {
      other.close();
    }
  });
});
