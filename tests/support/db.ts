import { randomUUID } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConnection } from "mysql2/promise";
import { Client } from "pg";
import { DataSource, type DataSourceOptions, type EntitySchema } from "typeorm";
import { ormqDataSourceOptions } from "../../src";
import { assertNoLeaks, trackDataSource } from "./leaks";

export type DialectName = "sqlite" | "postgres" | "mariadb";
export const DIALECTS: DialectName[] = ["sqlite", "postgres"];
/**
 * The databases whose suites pass on MariaDB too (issue 27, in progress: docs/mysql.md): MariaDB
 * joins them under ORMQ_SYSTEM_TESTS, where the global setup starts it.
 */
export const WITH_MARIADB: DialectName[] = process.env.ORMQ_SYSTEM_TESTS === "1" ? [...DIALECTS, "mariadb"] : DIALECTS;

/** A fresh, empty database: a SQLite file in a temp dir, or a new database on the test server. */
export interface TestDb {
  dialect: DialectName;
  /** What ORMQ_DATABASE_URL would be for it (child processes get this). */
  url: string;
  drop(): Promise<void>;
}

export async function createTestDb(dialect: DialectName): Promise<TestDb> {
  if (dialect === "sqlite") {
    const dir = join(tmpdir(), `ormq-test-${randomUUID()}`);
    mkdirSync(dir, { recursive: true });
    return { dialect, url: join(dir, "test.sqlite"), drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  if (dialect === "mariadb") return createMariaDbTestDb();
  const admin = process.env.ORMQ_TEST_PG_URL;
  if (!admin) throw new Error("ORMQ_TEST_PG_URL is not set: the jest global setup starts PostgreSQL");
  const name = `ormq_test_${randomUUID().replace(/-/g, "").slice(0, 16)}`;
  await withAdmin(admin, (c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    dialect,
    url: url.toString(),
    drop: () => withAdmin(admin, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

/** A fresh database on the tests' MariaDB, or on the server at `admin` (a test's own server). */
export async function createMariaDbTestDb(admin = process.env.ORMQ_TEST_MARIADB_URL): Promise<TestDb> {
  if (!admin) throw new Error("ORMQ_TEST_MARIADB_URL is not set: the jest global setup starts MariaDB under ORMQ_SYSTEM_TESTS=1");
  const name = `ormq_test_${randomUUID().replace(/-/g, "").slice(0, 16)}`;
  const onAdmin = async (sql: string) => {
    const c = await createConnection(admin);
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await onAdmin(`CREATE DATABASE ${name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return { dialect: "mariadb", url: url.toString(), drop: () => onAdmin(`DROP DATABASE IF EXISTS ${name}`) };
}

async function withAdmin<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
type EntityTarget = Function | EntitySchema;

/**
 * Opens a DataSource on a test database with ormq's setup plus `entities`, migrated. `sync: false`
 * leaves the schema as it is: for a DataSource with fewer entities than the tables hold, whose
 * synchronize would drop the others' columns.
 */
export async function openDataSource(db: TestDb, entities: EntityTarget[], extra: Partial<DataSourceOptions> = {}, sync = true): Promise<DataSource> {
  const base = ormqDataSourceOptions(db.url);
  const ds = new DataSource({
    ...base,
    entities: [...(base.entities as EntityTarget[]), ...entities],
    // ormq's migration creates ormq_tasks; synchronize then adds the test tasks' columns and the
    // test's own tables, the way an application's migration would.
    migrationsRun: true,
    synchronize: false,
    logging: false,
    ...extra,
  } as DataSourceOptions);
  await ds.initialize();
  if (sync) await ds.synchronize();
  return trackDataSource(ds);
}

/** A logger that keeps what it is given, for assertions; and is silent. */
export function memoryLogger() {
  const lines: { level: string; obj: object; msg?: string }[] = [];
  const make = (bindings: Record<string, unknown>): import("../../src").Logger => ({
    debug: (obj, msg) => lines.push({ level: "debug", obj: { ...bindings, ...obj }, msg }),
    info: (obj, msg) => lines.push({ level: "info", obj: { ...bindings, ...obj }, msg }),
    warn: (obj, msg) => lines.push({ level: "warn", obj: { ...bindings, ...obj }, msg }),
    error: (obj, msg) => lines.push({ level: "error", obj: { ...bindings, ...obj }, msg }),
    child: (more) => make({ ...bindings, ...more }),
  });
  return { logger: make({}), lines };
}

/**
 * Gives the enclosing describe block a fresh database with ormq's schema and `entities`, opened
 * before its tests and dropped after them; `onOpen` receives both.
 */
export function useTestDatabase(
  dialect: DialectName,
  onOpen: (opened: { db: TestDb; ds: DataSource }) => void,
  entities: EntityTarget[],
): void {
  let opened: { db: TestDb; ds: DataSource } | undefined;
  beforeAll(async () => {
    const db = await createTestDb(dialect);
    opened = { db, ds: await openDataSource(db, entities) };
    onOpen(opened);
  });
  afterAll(async () => {
    await opened?.ds.destroy();
    await opened?.db.drop();
    assertNoLeaks();
  });
}
