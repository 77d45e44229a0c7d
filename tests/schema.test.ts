import { DataSource } from "typeorm";
import { ormqDataSourceOptions } from "../src";
import { createTestDb, WITH_MARIADB, type TestDb } from "./support/db";
import { SCHEMA_VERSION } from "../entities/ControlEntity";

describe.each(WITH_MARIADB)("schema on %s", (dialect) => {
  let db: TestDb;
  let ds: DataSource;
  beforeAll(async () => {
    db = await createTestDb(dialect);
    ds = new DataSource({ ...ormqDataSourceOptions(db.url), migrationsRun: true, logging: false });
    await ds.initialize();
  });
  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  it("ormq's migrations and the entity agree: synchronize has nothing to change", async () => {
    const log = await ds.driver.createSchemaBuilder().log();
    expect(log.upQueries.map((q) => q.query)).toEqual([]);
  });

  /** The claim index's definition as the database reports it. */
  const claimIndex = async (): Promise<string> => {
    if (dialect === "mariadb") {
      const [row] = await ds.query("SHOW CREATE TABLE ormq_tasks");
      return String(row["Create Table"]).split("\n").find((line: string) => line.includes("`ormq_tasks_claim`")) ?? "";
    }
    const sql =
      dialect === "postgres"
        ? `SELECT indexdef AS def FROM pg_indexes WHERE indexname = 'ormq_tasks_claim'`
        : `SELECT sql AS def FROM sqlite_master WHERE name = 'ormq_tasks_claim'`;
    return String((await ds.query(sql))[0]?.def ?? "");
  };

  it("the claim index orders priority descending, and only pending rows (MariaDB: it leads with status)", async () => {
    const def = await claimIndex();
    if (dialect === "mariadb") {
      expect(def).toMatch(/\(`status`,\s*`priority` DESC,\s*`run_at`,\s*`id`\)/);
    } else {
      expect(def).toMatch(/"?priority"? DESC/);
      expect(def).toMatch(/WHERE.*status.*'pending'/);
    }
  });

  it("synchronize keeps the migration's index (neither drops the other's)", async () => {
    await ds.synchronize();
    expect(await claimIndex()).toMatch(/["`]?priority["`]? DESC/);
  });

  it("every migration reverts and applies again, through the database's contract, to the same schema", async () => {
    const migrations = ds.migrations.length;
    for (let i = 0; i < migrations; i++) await ds.undoLastMigration();
    const left =
      dialect === "postgres"
        ? await ds.query(`SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'ormq%'`)
        : dialect === "mariadb"
          ? await ds.query(
              `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE 'ormq%'
               UNION ALL SELECT trigger_name FROM information_schema.triggers WHERE trigger_schema = DATABASE()`,
            )
          : await ds.query(`SELECT name FROM sqlite_master WHERE name LIKE 'ormq%'`);
    expect(left).toEqual([]); // tables, indexes and triggers all gone
    expect(await ds.runMigrations()).toHaveLength(migrations);
    const log = await ds.driver.createSchemaBuilder().log();
    expect(log.upQueries.map((q) => q.query)).toEqual([]);
    const key = dialect === "mariadb" ? "`key`" : `"key"`;
    const [version] = await ds.query(`SELECT value FROM ormq_meta WHERE ${key} = 'schema_version'`);
    expect(version.value).toBe(String(SCHEMA_VERSION));
  });
});
