/**
 * The keys ormq stores and compares (unique, rate, concurrency) under values of every JavaScript
 * type and any length, and the unique guard under rollbacks and a burst of first enqueues on a
 * small pool.
 */
import fc from "fast-check";
import type { DataSource } from "typeorm";
import { enqueueMany, processN } from "../../src";
import { contractOf, tablesOf } from "../../src/dialect";
import { uniqueKeysOf } from "../../src/flow/uniqueSpec";
import { TaskRegistry } from "../../src/registry";
import { TenantRated, TypedKey } from "../fixtures/flow";
import { testEntities } from "../fixtures/tasks";
import { createTestDb, WITH_MARIADB, memoryLogger, openDataSource, useTestDatabase } from "../support/db";
import { ormqFor } from "../../src/client/client";

const AT = new Date("2026-03-01T12:00:00.000Z");

describe.each(WITH_MARIADB)("keys on %s", (dialect) => {
  let ds: DataSource;
  useTestDatabase(dialect, (o) => (ds = o.ds), testEntities);

  it("a unique key is the stored value's, whatever the JavaScript type it came as", async () => {
    const first = await TypedKey.create({ num: 42, flag: true, amount: 1.5, at: AT }).save();
    expect(first.deduplicated).toBe(false);
    // The same stored values, as other JavaScript values.
    const variants: Partial<TypedKey>[] = [
      { num: "42", flag: true, amount: "1.50", at: AT.toISOString() },
      { num: 42n, flag: true, amount: "1.5", at: new Date(AT.getTime()) },
      { num: "042", flag: true, amount: 1.5, at: AT },
    ];
    for (const values of variants) {
      const dup = await (TypedKey.create(values) as TypedKey).save();
      expect({ values, deduplicated: dup.deduplicated, id: dup.id }).toEqual({ values, deduplicated: true, id: first.id });
    }
    // What TypeORM reads back (a bigint and a decimal as strings on PostgreSQL) is the same key.
    const read = await ds.getRepository(TypedKey).findOneByOrFail({ id: first.id });
    const again = await TypedKey.create({ num: read.num, flag: read.flag, amount: read.amount, at: read.at }).save();
    expect(again.deduplicated).toBe(true);
    // Another stored value is another key.
    expect((await TypedKey.create({ num: 43, flag: true, amount: 1.5, at: AT }).save()).deduplicated).toBe(false);
    expect(await ds.getRepository(TypedKey).countBy({ status: "pending" })).toBe(2);
  });

  it("enqueueMany: one stored value is one key across JavaScript types", async () => {
    const tasks = [
      TypedKey.create({ num: 7, flag: false, amount: 2, at: AT }),
      TypedKey.create({ num: "7", flag: false, amount: "2.00", at: AT.toISOString() }),
      TypedKey.create({ num: 7n, flag: false, amount: "2", at: AT }),
    ];
    const ids = await enqueueMany(tasks, { dataSource: ds });
    expect(new Set(ids).size).toBe(1);
    expect(tasks.map((t) => t.deduplicated)).toEqual([false, true, true]);
  });

  it("property: an integer key is one key as a number, a string (any leading zeros or sign) or a bigint", async () => {
    const spec = ormqFor(ds).registry.byKey.get("typed_key")!.unique!;
    const key = (task: Partial<TypedKey>) => uniqueKeysOf(spec, "typed_key", { flag: true, amount: 1, at: AT, ...task }, "TypedKey", 0).key;
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.nat(3), (n, zeros) => {
        const text = n < 0n ? `-${"0".repeat(zeros)}${-n}` : `${"0".repeat(zeros)}${n}`;
        const forms: unknown[] = [n, String(n), text];
        if (Number.isSafeInteger(Number(n))) forms.push(Number(n));
        const keys = new Set(forms.map((num) => key({ num: num as string })));
        expect(keys.size).toBe(1);
      }),
    );
  });

  it("a rate or concurrency key of any length neither stops the claim nor merges two long values", async () => {
    const long = (c: string, n: number) => "x".repeat(120) + c.repeat(n);
    const tasks = [
      TenantRated.create({ tenant: long("a", 700) }),
      TenantRated.create({ tenant: long("a", 700) }), // the same tenant: its second claim waits a minute
      TenantRated.create({ tenant: long("b", 700) }), // same first 120 characters, another tenant
      TenantRated.create({ tenant: long("c", 20_000) }),
      TenantRated.create({ tenant: "short" }),
    ];
    await enqueueMany(tasks, { dataSource: ds });
    const { logger, lines } = memoryLogger();
    await processN(TenantRated, 4, { dataSource: ds, logger, pollIntervalMs: 20 });
    const rows = await ds.getRepository(TenantRated).find({ order: { id: "ASC" } });
    expect(rows.map((r) => r.status)).toEqual(["succeeded", "pending", "succeeded", "succeeded", "succeeded"]);
    expect(lines.filter((l) => l.level === "warn" || l.level === "error")).toEqual([]);
  });
});

describe.each(WITH_MARIADB)("the unique guard on a fresh DataSource (%s)", (dialect) => {
  it("a rolled-back first unique save leaves the guard in place for the next ones", async () => {
    const db = await createTestDb(dialect);
    // As an application's schema would be before ormq's first unique enqueue: no guard yet.
    const ds = await openDataSource(db, testEntities, { synchronize: true });
    try {
      for (const statement of contractOf(ds).schema.uniqueGuard.drop(tablesOf(ds).tasks)) await ds.query(statement);
      if (contractOf(ds).schema.ddlCommits) {
        // MySQL: DDL would commit the caller's transaction, so ormq installs no guard there: a
        // clear error naming the migration, and nothing written.
        await expect(TypedKey.create({ num: 1, flag: true, amount: 1, at: AT }).save()).rejects.toThrow("run ormq's migrations (OrmqUniqueTasks)");
        expect(await ds.getRepository(TypedKey).count()).toBe(0);
        return;
      }
      await expect(
        ds.transaction(async (m) => {
          await m.save(TypedKey.create({ num: 1, flag: true, amount: 1, at: AT }));
          throw new Error("rolled back on purpose");
        }),
      ).rejects.toThrow("rolled back on purpose");
      const first = await TypedKey.create({ num: 2, flag: true, amount: 1, at: AT }).save();
      const dup = await TypedKey.create({ num: 2, flag: true, amount: 1, at: AT }).save();
      expect({ deduplicated: dup.deduplicated, id: dup.id }).toEqual({ deduplicated: true, id: first.id });
    } finally {
      await ds.destroy();
      await db.drop();
    }
  });
});

describe("the unique guard on a fresh DataSource with a small pool (postgres)", () => {
  it("a burst of concurrent unique saves in transactions, more than the pool holds, all complete", async () => {
    const db = await createTestDb("postgres");
    await (await openDataSource(db, testEntities)).destroy(); // the schema, made once
    const ds = await openDataSource(db, testEntities, { poolSize: 4, migrationsRun: false }, false);
    try {
      let stuck: NodeJS.Timeout | undefined;
      const burst = Promise.all(
        Array.from({ length: 8 }, (_, i) => ds.transaction((m) => m.save(TypedKey.create({ num: 100 + (i % 4), flag: false, amount: 0, at: AT })))),
      );
      // A bound on a deadlock, not a timing: without the fix the burst never settles.
      const saved = await Promise.race([burst, new Promise<never>((_, reject) => (stuck = setTimeout(() => reject(new Error("the burst deadlocked the pool")), 20_000)))]).finally(() => clearTimeout(stuck));
      expect(saved.filter((t) => !t.deduplicated)).toHaveLength(4);
      expect(await ds.getRepository(TypedKey).countBy({ status: "pending" })).toBe(4);
    } finally {
      await ds.destroy();
      await db.drop();
    }
  });
});
