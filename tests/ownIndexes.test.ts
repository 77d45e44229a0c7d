/**
 * ormq's own indexes on ormq_tasks (src/dialect/taskIndexes.ts: partial, the claim's descending)
 * are left alone by TypeORM's synchronize: on a schema made by synchronize alone, ormq makes them.
 */
import { ChildEntity, Column, DataSource, type DataSourceOptions } from "typeorm";
import { BaseTaskEntity, ormqDataSourceOptions, processN } from "../src";
import { createTestDb, DIALECTS, type TestDb } from "./support/db";

@ChildEntity("own_index_plain")
class SyncPlain extends BaseTaskEntity {
  run() {
    return null;
  }
}

@ChildEntity("own_index_unique")
class SyncUnique extends BaseTaskEntity {
  static unique = { by: ["account"] };
  @Column({ type: "varchar", length: 64, nullable: true })
  account!: string | null;
  run() {
    return null;
  }
}

const OWN_TASK_INDEXES = ["ormq_tasks_claim", "ormq_tasks_lease", "ormq_tasks_scheduled", "ormq_tasks_type"];

describe.each(DIALECTS)("ormq's own indexes on a schema made by synchronize alone (%s)", (dialect) => {
  let db: TestDb;
  let ds: DataSource;
  beforeAll(async () => {
    db = await createTestDb(dialect);
    const base = ormqDataSourceOptions(db.url);
    ds = new DataSource({ ...base, entities: [...(base.entities as []), SyncPlain, SyncUnique], migrations: [], synchronize: true, logging: false } as DataSourceOptions);
    await ds.initialize();
  });
  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });
  const indexes = async (): Promise<Record<string, string>> => {
    const rows: { name: string; def: string }[] =
      dialect === "postgres"
        ? await ds.query(`SELECT indexname AS name, indexdef AS def FROM pg_indexes WHERE tablename = 'ormq_tasks'`)
        : await ds.query(`SELECT name, sql AS def FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ormq_tasks' AND sql IS NOT NULL`);
    return Object.fromEntries(rows.filter((r) => r.name.startsWith("ormq_")).map((r) => [r.name, r.def]));
  };

  it("synchronize makes none of them; a worker's registration makes the four it reads, the claim's with priority DESC", async () => {
    expect(Object.keys(await indexes())).toEqual([]);
    await ds.getRepository(SyncPlain).save(SyncPlain.create({}));
    expect((await processN(SyncPlain, 1, { dataSource: ds })).succeeded).toBe(1);
    const made = await indexes();
    expect(Object.keys(made).sort()).toEqual(OWN_TASK_INDEXES);
    expect(made.ormq_tasks_claim).toMatch(/"?priority"? DESC/);
    expect(made.ormq_tasks_claim).toMatch(/WHERE.*status.*'pending'/);
  });

  it("the first unique enqueue makes the unique indexes with its guard; synchronize then changes nothing and drops none", async () => {
    await ds.getRepository(SyncUnique).save(SyncUnique.create({ account: "a" }));
    await ds.getRepository(SyncUnique).save(SyncUnique.create({ account: "a" })); // skipped: a duplicate of a pending task
    expect(await ds.getRepository(SyncUnique).count()).toBe(1);
    expect(Object.keys(await indexes()).sort()).toEqual([...OWN_TASK_INDEXES, "ormq_tasks_unique", "ormq_tasks_unique_window"].sort());
    const log = await ds.driver.createSchemaBuilder().log();
    expect(log.upQueries.map((q) => q.query)).toEqual([]);
    await ds.synchronize();
    expect(Object.keys(await indexes())).toHaveLength(6);
  });
});
