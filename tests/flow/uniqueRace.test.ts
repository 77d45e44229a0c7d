/**
 * Unique keys under concurrent enqueuers: separate DataSources (as separate processes would be),
 * each enqueuing the same keys at once, through save(), transactions that go on afterwards, and
 * enqueueMany. Exactly one task per key; no transaction aborted; every enqueuer learns the id.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { DataSource } from "typeorm";
import { enqueueMany } from "../../src";
import { SyncAccount } from "../fixtures/flow";
import { testEntities } from "../fixtures/tasks";
import { createTestDb, openDataSource, type TestDb, WITH_MARIADB } from "../support/db";
import { trackChild } from "../support/leaks";

const KEYS = 200;
const keyOf = (i: number) => `k${i}`;

/** Which ids each enqueuer learnt, key by key, and the rows that exist. */
async function expectOnePerKey(ds: DataSource, learnt: Map<string, string>[]) {
  const rows = await ds.getRepository(SyncAccount).find({ select: { id: true, accountId: true } });
  const byKey = new Map<string, string[]>();
  for (const r of rows) byKey.set(r.accountId, [...(byKey.get(r.accountId) ?? []), r.id]);
  expect(byKey.size).toBe(KEYS);
  for (const [key, ids] of byKey) {
    expect(ids).toHaveLength(1);
    for (const [n, seen] of learnt.entries()) expect([n, key, seen.get(key)]).toEqual([n, key, ids[0]]);
  }
}

/** The database servers (SQLite has its own case below: one DataSource per process). */
const SERVERS = WITH_MARIADB.filter((d) => d !== "sqlite");

describe.each(SERVERS)("unique keys with three concurrent enqueuers on %s", (dialect) => {
  let db: TestDb;
  let sources: DataSource[];
  beforeEach(async () => {
    db = await createTestDb(dialect);
    sources = [];
    for (let i = 0; i < 3; i++) sources.push(await openDataSource(db, testEntities));
  });
  afterEach(async () => {
    for (const ds of sources) await ds.destroy();
    await db.drop();
  });

  it("through save(), through transactions that go on, and through enqueueMany", async () => {
    // Each its own order over all the keys: rotated, and backwards for the second.
    const order = (n: number) => Array.from({ length: KEYS }, (_, i) => ((n === 1 ? KEYS - 1 - i : i) + n * 67) % KEYS);
    const bySave = async (ds: DataSource, n: number) => {
      const seen = new Map<string, string>();
      await Promise.all(
        Array.from({ length: 4 }, async (_, lane) => {
          for (const i of order(n).filter((_, j) => j % 4 === lane)) {
            const task = await ds.getRepository(SyncAccount).save(SyncAccount.create({ accountId: keyOf(i) }));
            seen.set(keyOf(i), task.id);
          }
        }),
      );
      return seen;
    };
    const byTransaction = async (ds: DataSource, n: number) => {
      const seen = new Map<string, string>();
      for (const i of order(n)) {
        await ds.transaction(async (m) => {
          const task = await m.save(SyncAccount.create({ accountId: keyOf(i) }));
          // More statements after the insert: they fail if the skip aborted the transaction.
          await m.query("SELECT 1");
          seen.set(keyOf(i), task.id);
        });
      }
      return seen;
    };
    const byEnqueueMany = async (ds: DataSource, n: number) => {
      const tasks = order(n).map((i) => SyncAccount.create({ accountId: keyOf(i) }));
      const seen = new Map<string, string>();
      for (let start = 0; start < tasks.length; start += 25) {
        const chunk = tasks.slice(start, start + 25);
        await ds.transaction(async (manager) => {
          await enqueueMany(chunk, { manager });
          await manager.query("SELECT 1");
        });
        for (const t of chunk) seen.set(t.accountId, t.id);
      }
      return seen;
    };
    const learnt = await Promise.all([bySave(sources[0], 0), byTransaction(sources[1], 1), byEnqueueMany(sources[2], 2)]);
    await expectOnePerKey(sources[0], learnt);
  });
});

describe("unique keys on sqlite: one DataSource and a second process", () => {
  let db: TestDb;
  let ds: DataSource;
  beforeAll(async () => {
    db = await createTestDb("sqlite");
    ds = await openDataSource(db, testEntities);
  });
  afterAll(async () => {
    await ds.destroy();
    await db.drop();
  });

  it("exactly one task per key, and both enqueuers learn its id", async () => {
    const script = join(__dirname, "..", "..", "dist", "tests", "fixtures", "unique-enqueuer.js");
    const child = trackChild(spawn(process.execPath, [script], { env: { ...process.env, ORMQ_DATABASE_URL: db.url, ORMQ_TEST_KEYS: String(KEYS) }, stdio: ["pipe", "pipe", "inherit"] }));
    const lines: string[] = [];
    const ready = new Promise<void>((resolve) => createInterface({ input: child.stdout! }).on("line", (l) => (l === "ready" ? resolve() : lines.push(l))));
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    await ready;
    child.stdin!.write("go\n");
    const seen = new Map<string, string>();
    for (let i = KEYS - 1; i >= 0; i--) {
      const task = await SyncAccount.create({ accountId: keyOf(i) }).save();
      seen.set(keyOf(i), task.id);
    }
    expect(await exited).toBe(0);
    const theirs = new Map((JSON.parse(lines[0]) as { key: string; id: string }[]).map((r) => [r.key, r.id]));
    await expectOnePerKey(ds, [seen, theirs]);
  });
});
