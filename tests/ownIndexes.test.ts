/**
 * ormq's own indexes on ormq_tasks (src/dialect/taskIndexes.ts: partial, the claim's descending)
 * are left alone by TypeORM's synchronize: on a schema made by synchronize alone, ormq makes them.
 */
import { ChildEntity, Column, DataSource, type DataSourceOptions } from "typeorm";
import { BaseTaskEntity, ormqDataSourceOptions, processN } from "../src";
import { createTestDb, memoryLogger, WITH_MARIADB, type TestDb } from "./support/db";

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

const OWN_TASK_INDEXES = ["ormq_tasks_claim", "ormq_tasks_lease", "ormq_tasks_scheduled", "ormq_tasks_type", "ormq_tasks_parent", "ormq_tasks_waiting", "ormq_tasks_fair"];
/**
 * MySQL has no partial indexes: the failed-type and waiting indexes are not made there, nor the
 * fair claim's unless a worker runs a fair class (see taskIndexes.ts).
 */
const ownTaskIndexes = (dialect: string) => (dialect === "mariadb" ? OWN_TASK_INDEXES.filter((i) => i !== "ormq_tasks_type" && i !== "ormq_tasks_waiting" && i !== "ormq_tasks_fair") : OWN_TASK_INDEXES);

describe.each(WITH_MARIADB)("ormq's own indexes on a schema made by synchronize alone (%s)", (dialect) => {
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
        : dialect === "mariadb"
          ? await ds.query(
              `SELECT index_name AS name, GROUP_CONCAT(CONCAT('\`', column_name, '\`', IF(collation = 'D', ' DESC', '')) ORDER BY seq_in_index) AS def
               FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = 'ormq_tasks' GROUP BY index_name`,
            )
          : await ds.query(`SELECT name, sql AS def FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ormq_tasks' AND sql IS NOT NULL`);
    return Object.fromEntries(rows.filter((r) => r.name.startsWith("ormq_")).map((r) => [r.name, r.def]));
  };

  it("synchronize makes none of them; a worker's registration makes the ones it reads, the claim's with priority DESC", async () => {
    expect(Object.keys(await indexes())).toEqual([]);
    await ds.getRepository(SyncPlain).save(SyncPlain.create({}));
    const { logger, lines } = memoryLogger();
    expect((await processN(SyncPlain, 1, { dataSource: ds, logger })).succeeded).toBe(1);
    expect(lines.filter((l) => l.msg?.startsWith("created ormq's index")).length).toBe(ownTaskIndexes(dialect).length); // said once per index
    const made = await indexes();
    expect(Object.keys(made).sort()).toEqual([...ownTaskIndexes(dialect)].sort());
    if (dialect === "mariadb") {
      expect(made.ormq_tasks_claim).toBe("`status`,`priority` DESC,`run_at`,`id`"); // no partial indexes: led by status
    } else {
      expect(made.ormq_tasks_claim).toMatch(/"?priority"? DESC/);
      expect(made.ormq_tasks_claim).toMatch(/WHERE.*status.*'pending'/);
    }
  });

  it("the first unique enqueue makes the unique indexes with its guard (MariaDB: refused, naming the migration); synchronize then changes nothing and drops none", async () => {
    if (dialect === "mariadb") {
      // DDL would commit the caller's transaction there: the guard comes from the migration only.
      await expect(ds.getRepository(SyncUnique).save(SyncUnique.create({ account: "a" }))).rejects.toThrow("run ormq's migrations (OrmqUniqueTasks)");
      expect((await ds.driver.createSchemaBuilder().log()).upQueries).toEqual([]);
      return;
    }
    await ds.getRepository(SyncUnique).save(SyncUnique.create({ account: "a" }));
    await ds.getRepository(SyncUnique).save(SyncUnique.create({ account: "a" })); // skipped: a duplicate of a pending task
    expect(await ds.getRepository(SyncUnique).count()).toBe(1);
    expect(Object.keys(await indexes()).sort()).toEqual([...OWN_TASK_INDEXES, "ormq_tasks_unique", "ormq_tasks_unique_window"].sort());
    const log = await ds.driver.createSchemaBuilder().log();
    expect(log.upQueries.map((q) => q.query)).toEqual([]);
    await ds.synchronize();
    expect(Object.keys(await indexes())).toHaveLength(ownTaskIndexes(dialect).length + 2);
  });
});
