/**
 * Unique keys against generated input: any text (long, unicode, quotes, NUL-free) as a key
 * value makes exactly one task per distinct value, and enqueueing it twice never writes twice.
 * And bad `static unique` declarations: one TaskDefinitionError naming the class and the field.
 */
import fc from "fast-check";
import { ChildEntity, Column, DataSource, type DataSourceOptions } from "typeorm";
import { BaseTaskEntity, ormqDataSourceOptions, processN, TaskDefinitionError, type UniqueOption } from "../../src";
import { SyncAccount } from "../fixtures/flow";
import { testEntities } from "../fixtures/tasks";
import { createTestDb, WITH_MARIADB, memoryLogger, useTestDatabase } from "../support/db";

describe.each(WITH_MARIADB)("unique keys from generated values on %s", (dialect) => {
  let ds: DataSource;
  useTestDatabase(dialect, (o) => (ds = o.ds), testEntities);

  it("one task per distinct value, whatever the text", async () => {
    // Text the column stores (no NUL, at most 230 characters with the prefix), from short to past
    // the length where the key is stored as a digest.
    const value = fc
      .oneof(fc.string({ maxLength: 30 }), fc.string({ unit: "grapheme", minLength: 80, maxLength: 200 }))
      .map((s) => s.replace(/\0/g, ""))
      .filter((s) => [...s].length <= 230);
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(value, { minLength: 1, maxLength: 6 }), async (values) => {
        const prefix = `${Math.random()}:`;
        const ids = new Map<string, string>();
        for (const v of [...values, ...values]) {
          const task = await SyncAccount.create({ accountId: prefix + v }).save();
          if (ids.has(v)) expect([v, task.deduplicated, task.id]).toEqual([v, true, ids.get(v)]);
          else ids.set(v, task.id);
        }
        const stored = await ds.getRepository(SyncAccount).createQueryBuilder("t").where("t.accountId LIKE :p", { p: `${prefix.replace(/[%_]/g, "\\$&")}%` }).getCount();
        expect(stored).toBe(values.length);
      }),
      { numRuns: 25, endOnFailure: true },
    );
  });
});

describe("bad static unique, concurrencyLimit and rateLimit declarations", () => {
  const declare = (unique: unknown, keepSucceeded = true) => {
    @ChildEntity(`bad_unique_${Math.random()}`)
    class BadUnique extends BaseTaskEntity {
      static unique = unique as UniqueOption;
      static keepSucceeded = keepSucceeded;
      @Column({ type: "varchar", length: 255, nullable: true })
      accountId!: string;
      async run() {
        return null;
      }
    }
    return BadUnique;
  };

  /** What the first save of a `cls` task does, on a fresh SQLite DataSource that knows only `cls`. */
  const firstSaveError = async (cls: new () => BaseTaskEntity & { accountId: string }): Promise<unknown> => {
    const db = await createTestDb("sqlite");
    const base = ormqDataSourceOptions(db.url);
    const ds = new DataSource({ ...base, entities: [...(base.entities as []), cls], logging: false } as DataSourceOptions);
    await ds.initialize();
    try {
      const repository = ds.getRepository(cls);
      return await repository.save(repository.create({ accountId: "x" } as never)).then(() => undefined, (e: unknown) => e);
    } finally {
      await ds.destroy();
      await db.drop();
    }
  };

  // Refused when the DataSource's task classes are first checked (a worker's start, or the first
  // enqueue, as here), before anything is written.
  it.each([
    [{ by: ["nope"] }, /BadUnique\.unique\.by names "nope"/],
    [{ by: ["status"] }, /not a column/],
    [{ by: [] }, /by must list 1 to 8/],
    [{ by: ["accountId"], onConflict: "merge" }, /onConflict must be/],
    [{ by: ["accountId"], within: "-1h" }, /within must be a duration/],
    [{ by: ["accountId"], within: 0 }, /within must be a duration/],
    [{ by: ["accountId"], extra: 1 }, /unknown field "extra"/],
    ["accountId", /must be an object/],
  ])("%j is refused before anything is written", async (unique, message) => {
    const err = await firstSaveError(declare(unique));
    expect(err).toBeInstanceOf(TaskDefinitionError);
    expect((err as Error).message).toMatch(message);
  });

  it.each([
    ["concurrencyLimit", 0, /must be a positive integer/],
    ["concurrencyLimit", 1.5, /must be a positive integer/],
    ["concurrencyLimit", -2, /must be a positive integer/],
    ["concurrencyLimit", { max: 2, by: "nope" }, /concurrencyLimit\.by names "nope"/],
    ["concurrencyLimit", { max: 2, by: "status" }, /not a column/],
    ["concurrencyLimit", { max: 2, per: "x" }, /unknown field "per"/],
    ["concurrencyLimit", "2", /must be a positive integer/],
    ["rateLimit", { max: 0, perMs: 1_000 }, /rateLimit\.max must be a positive integer/],
    ["rateLimit", { max: 5, perMs: -1 }, /rateLimit\.perMs must be an integer from 10/],
    ["rateLimit", { max: 5 }, /rateLimit\.perMs must be/],
    ["rateLimit", { max: 5, perMs: 1_000, by: "nope" }, /rateLimit\.by names "nope"/],
    ["rateLimit", { max: 5, perMs: 1_000, burst: 2 }, /unknown field "burst"/],
    ["rateLimit", [5, 1_000], /must be \{ max, perMs, by\? \}/],
  ] as const)("%s %j is refused before anything is written", async (field, limit, message) => {
    @ChildEntity(`bad_limit_${Math.random()}`)
    class BadLimit extends BaseTaskEntity {
      @Column({ type: "varchar", length: 255, nullable: true })
      accountId!: string;
      async run() {
        return null;
      }
    }
    (BadLimit as unknown as Record<string, unknown>)[field] = limit;
    const err = await firstSaveError(BadLimit);
    expect(err).toBeInstanceOf(TaskDefinitionError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toContain(`BadLimit.${field}`);
  });

  it("a worker refuses to start on a DataSource with a badly declared class, naming it", async () => {
    @ChildEntity(`bad_start_${Math.random()}`)
    class BadStart extends BaseTaskEntity {
      static concurrencyLimit = { max: 2, by: "nope" };
      async run() {
        return null;
      }
    }
    const db = await createTestDb("sqlite");
    const base = ormqDataSourceOptions(db.url);
    const ds = new DataSource({ ...base, entities: [...(base.entities as []), BadStart], logging: false } as DataSourceOptions);
    await ds.initialize();
    try {
      const err = await processN(BadStart, 1, { dataSource: ds, logger: memoryLogger().logger }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TaskDefinitionError);
      expect((err as Error).message).toContain('BadStart.concurrencyLimit.by names "nope"');
    } finally {
      await ds.destroy();
      await db.drop();
    }
  });

  it("within with keepSucceeded = false is refused: the window lives in the rows", async () => {
    const err = await firstSaveError(declare({ by: ["accountId"], within: "1h" }, false));
    expect(err).toBeInstanceOf(TaskDefinitionError);
    expect((err as Error).message).toMatch(/keepSucceeded = false/);
  });
});
