import { DataSource } from "typeorm";
import { ormqDataSourceOptions } from "../src";
import { createTestDb, DIALECTS, type TestDb } from "./support/db";

describe.each(DIALECTS)("schema on %s", (dialect) => {
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

  it("the claim index orders priority descending, and only pending rows", async () => {
    const sql =
      dialect === "postgres"
        ? `SELECT indexdef AS def FROM pg_indexes WHERE indexname = 'ormq_tasks_claim'`
        : `SELECT sql AS def FROM sqlite_master WHERE name = 'ormq_tasks_claim'`;
    const [row] = await ds.query(sql);
    expect(row.def).toMatch(/"?priority"? DESC/);
    expect(row.def).toMatch(/WHERE.*status.*'pending'/);
  });

  it("synchronize keeps the migration's index (neither drops the other's)", async () => {
    await ds.synchronize();
    const sql =
      dialect === "postgres"
        ? `SELECT indexdef AS def FROM pg_indexes WHERE indexname = 'ormq_tasks_claim'`
        : `SELECT sql AS def FROM sqlite_master WHERE name = 'ormq_tasks_claim'`;
    const [row] = await ds.query(sql);
    expect(row.def).toMatch(/"?priority"? DESC/);
  });

  it("every migration reverts and applies again, through the database's contract, to the same schema", async () => {
    const migrations = ds.migrations.length;
    for (let i = 0; i < migrations; i++) await ds.undoLastMigration();
    const left = dialect === "postgres"
      ? await ds.query(`SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'ormq%'`)
      : await ds.query(`SELECT name FROM sqlite_master WHERE name LIKE 'ormq%'`);
    expect(left).toEqual([]); // tables, indexes and triggers all gone
    expect(await ds.runMigrations()).toHaveLength(migrations);
    const log = await ds.driver.createSchemaBuilder().log();
    expect(log.upQueries.map((q) => q.query)).toEqual([]);
    const [version] = await ds.query(`SELECT value FROM ormq_meta WHERE "key" = 'schema_version'`);
    expect(version.value).toBe("3");
  });
});
