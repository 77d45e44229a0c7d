/**
 * Fair shares between tenants (`static fairness`), on every database: a tenant that queued first
 * cannot starve the others, weights give proportional shares, priority still comes first, any
 * value of the `by` column (hostile ones too) makes a key that fits, and workers on separate
 * DataSources claim each task once.
 */
import fc from "fast-check";
import { ChildEntity, Column, type DataSource } from "typeorm";
import { BaseTaskEntity, enqueueMany, processN } from "../../src";
import { setQueueLimits } from "../../src/admin";
import { fairKeyText, fairnessOf } from "../../src/flow/fairnessSpec";
import { TaskDefinitionError } from "../../src/errors";
import { KnownKeys, nextKeysSql } from "../../src/dialect/mysql/fairKeys";
import { mysqlSql } from "../../src/dialect/mysql/sql";
import { memoryLogger, openDataSource, useTestDatabase, WITH_MARIADB, type TestDb } from "../support/db";

/** Records the order in which its tasks start. */
@ChildEntity("fair_tenant_task")
class TenantTask extends BaseTaskEntity {
  static fairness = { by: "tenant" };
  static started: string[] = [];
  @Column({ type: "varchar", length: 2000, nullable: true })
  tenant!: string | null;
  async run() {
    TenantTask.started.push(`${this.tenant}`);
  }
}

@ChildEntity("fair_weighted_task")
class WeightedTask extends BaseTaskEntity {
  static fairness = { by: "account", weights: { "7": 3 } };
  static started: number[] = [];
  @Column({ type: "integer", nullable: true })
  account!: number | null;
  async run() {
    WeightedTask.started.push(Number(this.account));
  }
}

/** Fair across shops, and at most one running per shop: records starts and the most running per shop. */
@ChildEntity("fair_shop_limited_task")
class ShopTask extends BaseTaskEntity {
  static fairness = { by: "shop" };
  static concurrencyLimit = { max: 1, by: "shop" };
  static started: string[] = [];
  static running = new Map<string, number>();
  static most = 0;
  @Column({ type: "varchar", length: 100, nullable: true })
  shop!: string | null;
  async run() {
    const shop = `${this.shop}`;
    ShopTask.started.push(shop);
    const now = (ShopTask.running.get(shop) ?? 0) + 1;
    ShopTask.running.set(shop, now);
    ShopTask.most = Math.max(ShopTask.most, now);
    await new Promise((resolve) => setTimeout(resolve, 2));
    ShopTask.running.set(shop, now - 1);
  }
}

/** Fair across regions under a class limit of 2 running in all and a rate limit. */
@ChildEntity("fair_region_limited_task")
class RegionTask extends BaseTaskEntity {
  static fairness = { by: "region" };
  static concurrencyLimit = 2;
  static rateLimit = { max: 10_000, perMs: 60_000 };
  static started: string[] = [];
  static running = 0;
  static most = 0;
  @Column({ type: "varchar", length: 100, nullable: true })
  region!: string | null;
  async run() {
    RegionTask.started.push(`${this.region}`);
    RegionTask.most = Math.max(RegionTask.most, ++RegionTask.running);
    await new Promise((resolve) => setTimeout(resolve, 2));
    RegionTask.running--;
  }
}

const entities = [TenantTask, WeightedTask, ShopTask, RegionTask];
const quiet = () => memoryLogger().logger;

describe.each(WITH_MARIADB)("fairness on %s", (dialect) => {
  let ds: DataSource;
  let db: TestDb;
  useTestDatabase(dialect, (o) => ((ds = o.ds), (db = o.db)), entities);
  beforeEach(async () => {
    TenantTask.started = [];
    WeightedTask.started = [];
    ShopTask.started = [];
    ShopTask.running.clear();
    ShopTask.most = 0;
    RegionTask.started = [];
    RegionTask.most = 0;
    await ds.getRepository(BaseTaskEntity).createQueryBuilder().delete().execute();
  });

  it("tenant A's 300 tasks queued first do not hold back B to E: theirs all start within the first 100", async () => {
    await enqueueMany(Array.from({ length: 300 }, () => TenantTask.create({ tenant: "A" })), { dataSource: ds });
    await enqueueMany(["B", "C", "D", "E"].flatMap((tenant) => Array.from({ length: 15 }, () => TenantTask.create({ tenant }))), { dataSource: ds });
    const summary = await processN(TenantTask, 360, { dataSource: ds, logger: quiet() });
    expect(summary.succeeded).toBe(360);
    const lastOther = Math.max(...["B", "C", "D", "E"].map((t) => TenantTask.started.lastIndexOf(t)));
    // Round-robin: 5 tenants, 15 each for B-E, so 75 starts serve them all (FIFO: after 300 of A's).
    expect(lastOther).toBeLessThan(100);
    expect(TenantTask.started.filter((t) => t === "A")).toHaveLength(300);
  });

  it("one worker at a time, a key per claim: strict turns across the tenants", async () => {
    await enqueueMany(Array.from({ length: 30 }, () => TenantTask.create({ tenant: "A" })), { dataSource: ds });
    await enqueueMany(Array.from({ length: 3 }, () => TenantTask.create({ tenant: "B" })), { dataSource: ds });
    await processN(TenantTask, 33, { dataSource: ds, concurrency: 1, prefetch: 0, logger: quiet() });
    expect(TenantTask.started.slice(0, 6).sort()).toEqual(["A", "A", "A", "B", "B", "B"]);
  });

  it("weights give proportional shares; an integer column's values make the same key whatever their JavaScript type", async () => {
    // Account 7 (given as a number and as a string) weighs 3, account 8 weighs 1.
    await enqueueMany(Array.from({ length: 60 }, (_, i) => WeightedTask.create({ account: (i % 2 === 0 ? 7 : "7") as number })), { dataSource: ds });
    await enqueueMany(Array.from({ length: 60 }, () => WeightedTask.create({ account: 8 })), { dataSource: ds });
    const keys = await ds.query(`SELECT DISTINCT fair_key FROM ormq_tasks WHERE type = 'fair_weighted_task' ORDER BY fair_key`);
    expect(keys.map((r: { fair_key: string }) => r.fair_key)).toEqual(["7", "8"]);
    await processN(WeightedTask, 120, { dataSource: ds, concurrency: 4, logger: quiet() });
    const first = WeightedTask.started.slice(0, 40);
    const sevens = first.filter((a) => a === 7).length;
    expect(sevens).toBeGreaterThanOrEqual(26);
    expect(sevens).toBeLessThanOrEqual(34);
  });

  it("priority comes first: a later tenant's urgent task starts before anyone's normal ones", async () => {
    await enqueueMany(Array.from({ length: 20 }, () => TenantTask.create({ tenant: "A" })), { dataSource: ds });
    await TenantTask.create({ tenant: "Z", priority: 10 }).save();
    await processN(TenantTask, 21, { dataSource: ds, logger: quiet() });
    expect(TenantTask.started[0]).toBe("Z");
  });

  it("any value of the `by` column makes a key that fits and is claimed: long, empty, null, odd characters", async () => {
    const values = fc.sample(fc.oneof(fc.string({ maxLength: 2000 }), fc.constantFrom("", "a".repeat(2000), "\ud83d\ude00 tenant", "x'); DROP TABLE t;--")), 40).filter((v) => !v.includes("\u0000"));
    await enqueueMany([...values.map((tenant) => TenantTask.create({ tenant })), TenantTask.create({ tenant: null })], { dataSource: ds });
    const summary = await processN(TenantTask, values.length + 1, { dataSource: ds, logger: quiet() });
    expect(summary).toMatchObject({ succeeded: values.length + 1, failed: 0 });
  });

  it("the fair claim's index is there (on MariaDB, made by the first worker of a fair class; the migration makes none)", async () => {
    const sql =
      dialect === "sqlite"
        ? `SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'ormq_tasks_fair'`
        : dialect === "postgres"
          ? `SELECT indexname AS name FROM pg_indexes WHERE indexname = 'ormq_tasks_fair'`
          : `SELECT DISTINCT index_name AS name FROM information_schema.statistics WHERE table_schema = DATABASE() AND index_name = 'ormq_tasks_fair'`;
    expect(await ds.query(sql)).toHaveLength(1);
  });

  it("with a concurrency limit per key: shop A's 300 tasks queued first, one at a time, while B to E's run beside them", async () => {
    // In claim order the limited claim's candidates would be A's first 200 tasks: one claimed at a
    // time (A's limit), and B to E's only after A's backlog.
    await enqueueMany(Array.from({ length: 300 }, () => ShopTask.create({ shop: "A" })), { dataSource: ds });
    await enqueueMany(["B", "C", "D", "E"].flatMap((shop) => Array.from({ length: 5 }, () => ShopTask.create({ shop }))), { dataSource: ds });
    const summary = await processN(ShopTask, 30, { dataSource: ds, concurrency: 8, logger: quiet() });
    expect(summary.succeeded).toBe(30);
    expect(ShopTask.started.filter((s) => s !== "A")).toHaveLength(20);
    expect(ShopTask.most).toBe(1);
  });

  it("with a class limit and a rate limit: the limited places go round the regions", async () => {
    await ds.query(`DELETE FROM ormq_rate_claims`);
    await enqueueMany(Array.from({ length: 40 }, () => RegionTask.create({ region: "A" })), { dataSource: ds });
    await enqueueMany(["B", "C"].flatMap((region) => Array.from({ length: 4 }, () => RegionTask.create({ region }))), { dataSource: ds });
    const summary = await processN(RegionTask, 48, { dataSource: ds, concurrency: 8, logger: quiet() });
    expect(summary.succeeded).toBe(48);
    expect(RegionTask.most).toBeLessThanOrEqual(2);
    // Three regions in turns: B's and C's 8 tasks are among the first 16 (in claim order: after A's 40).
    const lastOther = Math.max(RegionTask.started.lastIndexOf("B"), RegionTask.started.lastIndexOf("C"));
    expect(lastOther).toBeLessThan(16);
    const claims = await ds.query(`SELECT count(*) AS n FROM ormq_rate_claims`);
    expect(Number(claims[0].n)).toBe(48);
  });

  it("with a queue limit on a fair class that has none of its own: one at a time from that queue, the tenants in turns", async () => {
    await enqueueMany(Array.from({ length: 20 }, () => TenantTask.create({ tenant: "A" }).onQueue("fair_limited")), { dataSource: ds });
    await enqueueMany(Array.from({ length: 3 }, () => TenantTask.create({ tenant: "B" }).onQueue("fair_limited")), { dataSource: ds });
    await setQueueLimits("fair_limited", { concurrency: 1 }, { dataSource: ds });
    try {
      let done = 0;
      for (let round = 0; done < 23 && round < 20; round++) done += (await processN(TenantTask, 23, { dataSource: ds, concurrency: 4, pollIntervalMs: 50, logger: quiet() })).succeeded;
      expect(done).toBe(23);
    } finally {
      await setQueueLimits("fair_limited", { concurrency: null }, { dataSource: ds });
    }
    // In claim order B's would come after A's 20.
    expect(TenantTask.started.lastIndexOf("B")).toBeLessThan(8);
  });

  it("workers on separate DataSources claim each task once", async () => {
    await enqueueMany(Array.from({ length: 200 }, (_, i) => TenantTask.create({ tenant: `t${i % 7}` })), { dataSource: ds });
    const other = await openDataSource(db, entities);
    try {
      const summaries = await Promise.all([ds, other].map((source) => processN(TenantTask, 200, { dataSource: source, concurrency: 10, pollIntervalMs: 50, logger: quiet() })));
      expect(summaries[0].succeeded + summaries[1].succeeded).toBe(200);
    } finally {
      await other.destroy();
    }
    expect(TenantTask.started).toHaveLength(200);
  });

  if (dialect === "mariadb") {
    it("MariaDB: the keys are read by index seeks, not by reading the pending entries of the big tenant", async () => {
      await enqueueMany(Array.from({ length: 3_000 }, () => TenantTask.create({ tenant: "A" })), { dataSource: ds });
      await enqueueMany(["B", "C", "D"].map((tenant) => TenantTask.create({ tenant })), { dataSource: ds });
      const runner = ds.createQueryRunner();
      try {
        const readNext = async () => Number((await runner.query(`SHOW SESSION STATUS LIKE 'Handler_read_next'`))[0].Value);
        const known = new KnownKeys();
        const before = await readNext();
        const keys = await known.read("fair_tenant_task", null, 10, async (after, probes, count) => {
          const values: unknown[] = [];
          const text = nextKeysSql("ormq_tasks", "fair_tenant_task", after, probes, count, mysqlSql.parts(values));
          return (await runner.query(text, values)).map((r: { fk: string }) => r.fk);
        });
        expect(keys).toEqual(["A", "B", "C", "D"]);
        // A recursive statement's correlated MIN read every one of A's 3,000 entries per key.
        expect((await readNext()) - before).toBeLessThan(100);
      } finally {
        await runner.release();
      }
    });
  }
});

/** What nextKeysSql returns, over a sorted set of keys: the least key past `after` and past each probe. */
function nextKeysOf(keys: readonly string[], after: string | null, probes: readonly string[], count: number): string[] {
  const next = (bound: string | null) => keys.find((k) => bound === null || k > bound);
  const found = new Set([next(after), ...probes.map(next)].filter((k): k is string => k !== undefined));
  return [...found].sort().slice(0, count);
}

describe("fairness: MySQL's key reads from known keys", () => {
  it("a read returns exactly the first keys past its place, however the keys changed since the last", async () => {
    const key = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz".split(""));
    const step = fc.record({ add: fc.array(key, { maxLength: 6 }), remove: fc.array(key, { maxLength: 6 }), after: fc.option(key), count: fc.integer({ min: 1, max: 8 }) });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 12 }), async (steps) => {
        const known = new KnownKeys();
        const present = new Set<string>();
        for (const { add, remove, after, count } of steps) {
          add.forEach((k) => present.add(k));
          remove.forEach((k) => present.delete(k));
          const keys = [...present].sort();
          const truth = keys.filter((k) => after === null || k > after).slice(0, count);
          let statements = 0;
          const read = await known.read("t", after, count, async (from, probes, most) => (statements++, nextKeysOf(keys, from, probes, most)));
          if (JSON.stringify(read) !== JSON.stringify(truth) || statements > count + 1) return false;
        }
        return true;
      }),
    );
  });

  it("with the keys known and unchanged, a read is one statement", async () => {
    const keys = Array.from({ length: 50 }, (_, i) => `k${String(i).padStart(2, "0")}`);
    const known = new KnownKeys();
    const statements = [0, 0];
    for (const round of [0, 1]) {
      const read = await known.read("t", null, 100, async (from, probes, most) => (statements[round]++, nextKeysOf(keys, from, probes, most)));
      expect(read).toEqual(keys);
    }
    expect(statements[1]).toBe(1);
  });
});

describe("fairness: keys and definitions", () => {
  it("a key is bounded and stable whatever the text", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 3000, unit: "binary" }), (text) => {
        const key = fairKeyText(text);
        return key.length <= 255 && key === fairKeyText(text) && !/[\u0000\ud800-\udfff]/.test(key);
      }),
    );
  });

  it("a class's fairness is checked when its DataSource's registry is built, naming what is wrong", () => {
    const metadata = { columns: [{ propertyName: "tenant", databaseName: "tenant", target: TenantTask, type: "varchar" }] } as never;
    expect(() => fairnessOf({ name: "T", fairness: { by: "nope" } }, metadata)).toThrow(TaskDefinitionError);
    expect(() => fairnessOf({ name: "T", fairness: { by: "tenant", weights: { a: 0 } } }, metadata)).toThrow('T.fairness.weights["a"] must be an integer from 1 to 1000, got 0');
    expect(() => fairnessOf({ name: "T", fairness: { by: "tenant", extra: 1 } }, metadata)).toThrow('T.fairness has an unknown field "extra" (by, weights)');
    expect(() => fairnessOf({ name: "T", fairness: "tenant" }, metadata)).toThrow('T.fairness must be { by, weights? }, got "tenant"');
  });
});
