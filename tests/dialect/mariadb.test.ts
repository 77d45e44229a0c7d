/**
 * The MySQL/MariaDB dialect as far as it goes (issue 27, in progress: docs/mysql.md), on a real
 * MariaDB: its spelling of ormq's shared statements (the limited claim's pick and its rate
 * records, the controls read: the statements PostgreSQL and SQLite run, given the MySQL parts),
 * ormq's migrations, save() and a worker, and the unique guard's key table.
 */
import { createConnection, type Connection, type RowDataPacket } from "mysql2/promise";
import { contractOf, createDialect, tablesOf } from "../../src/dialect";
import { controlsOf, controlsSql } from "../../src/dialect/controlsRead";
import type { ClaimLimits, ClaimRequest, Tables } from "../../src/dialect/dialect";
import { limitedPickSql, rateClaimsSql } from "../../src/dialect/limitedClaim";
import { MYSQL_CLOCK_SQL, mysqlSql } from "../../src/dialect/mysql/sql";
import { SYSTEM_TESTS } from "../support/pgbouncer";
import { ChildEntity, DataSource, type DataSourceOptions } from "typeorm";
import { BaseTaskEntity, enqueueMany, ormqDataSourceOptions, ormqFor, processN } from "../../src";
import { serverHasInsertReturning } from "../../src/dialect/mysql/insertIds";
import { SyncAccount } from "../fixtures/flow";
import { createMetrics } from "../../src/metrics";
import { createTestDb, memoryLogger, openDataSource, type TestDb } from "../support/db";

const RUN = SYSTEM_TESTS;
if (!RUN) console.log("tests/dialect/mariadb.test.ts skipped: it runs a real MariaDB (the mariadb-server package); set ORMQ_SYSTEM_TESTS=1, as .ci/run does");
const describeMaria = RUN ? describe : describe.skip;

const TABLES = { tasks: "`ormq_tasks`", rateClaims: "`ormq_rate_claims`", controls: "`ormq_controls`", meta: "`ormq_meta`" } as Tables;
const NO_LIMITS: ClaimLimits = { types: [], queues: [], typeRates: [], queueRates: [] };

describeMaria("MySQL/MariaDB spelling of the shared statements, on a real MariaDB", () => {
  let db: Connection;
  beforeAll(async () => {
    // The run's MariaDB, started by the global setup under ORMQ_SYSTEM_TESTS.
    const url = new URL(process.env.ORMQ_TEST_MARIADB_URL!);
    db = await createConnection({ host: url.hostname, port: Number(url.port), user: "root", multipleStatements: false, supportBigNumbers: true, bigNumberStrings: true });
    await db.query("DROP DATABASE IF EXISTS ormq_spelling");
    await db.query("CREATE DATABASE ormq_spelling");
    await db.query("USE ormq_spelling");
    // The columns these statements read, as ormq's migrations will create them here.
    await db.query(`CREATE TABLE ormq_tasks (
      id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, type varchar(255) NOT NULL, queue varchar(255) NOT NULL,
      status varchar(16) NOT NULL DEFAULT 'pending', priority integer NOT NULL DEFAULT 0, run_at bigint NOT NULL,
      label varchar(64) NULL)`);
    await db.query("CREATE TABLE ormq_rate_claims (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, `key` varchar(600) NOT NULL, until bigint NOT NULL)");
    await db.query(`CREATE TABLE ormq_controls (scope varchar(16) NOT NULL, name varchar(255) NOT NULL, paused integer NOT NULL DEFAULT 0,
      concurrency integer NULL, rate_max integer NULL, rate_per_ms bigint NULL, updated_at bigint NOT NULL, PRIMARY KEY (scope, name))`);
    await db.query("CREATE TABLE ormq_meta (`key` varchar(64) NOT NULL PRIMARY KEY, value varchar(255) NOT NULL)");
  }, 60_000);
  afterAll(async () => {
    await db?.query("DROP DATABASE IF EXISTS ormq_spelling");
    await db?.end();
  });
  beforeEach(async () => {
    for (const table of ["ormq_tasks", "ormq_rate_claims", "ormq_controls", "ormq_meta"]) await db.query(`DELETE FROM ${table}`);
  });

  const rows = async (sql: string, values: unknown[] = []) => (await db.query<RowDataPacket[]>(sql, values))[0];
  const add = (type: string, queue: string, label: string | null, priority = 0, runAt = 1) =>
    db.query("INSERT INTO ormq_tasks (type, queue, label, priority, run_at) VALUES (?, ?, ?, ?, ?)", [type, queue, label, priority, runAt]);
  const request = (types: string[], limit = 50): ClaimRequest => ({ types, queues: null, limit, leaseMs: 60_000 });
  /** Runs the shared limited pick with the MySQL parts: the ids it would claim, in claim order. */
  const pick = async (limits: ClaimLimits, types: string[], now = 1_000) => {
    const values: unknown[] = [];
    const parts = mysqlSql.parts(values);
    const text = limitedPickSql(TABLES.tasks, TABLES.rateClaims, () => parts.param(now, "bigint"), request(types), limits, 50, parts);
    return (await rows(text, values)).map((r) => String(r.id));
  };
  const claim = (ids: string[]) => (ids.length ? db.query(`UPDATE ormq_tasks SET status = 'running' WHERE id IN (${ids.map(() => "?").join(", ")})`, ids) : undefined);

  it("reads the database's clock in epoch ms", async () => {
    const [row] = await rows(MYSQL_CLOCK_SQL);
    expect(Math.abs(Number(row.now) - Date.now())).toBeLessThan(5_000);
  });

  it("binds values in text order, writes integers as literals, and spells lists, concatenation, casts and quoted names", async () => {
    const values: unknown[] = [];
    const p = mysqlSql.parts(values);
    const text = `SELECT ${p.concat(p.param("a'b", "text"), p.castText(p.param(42, "int")), "'-'", p.param("c", "text"))} AS joined,
      ${p.inList("'x'", ["y", "x"])} AS inside, ${p.inList("'x'", [])} AS inEmpty, ${p.notInList("'x'", [])} AS notInEmpty,
      ${p.notInList("'x'", ["x"])} AS notInside, 7 AS ${p.escape("we`ird")}`;
    expect(values).toEqual(["a'b", "c", "y", "x", "x"]);
    const [row] = await rows(text, values);
    expect({ ...row }).toEqual({ joined: "a'b42-c", inside: 1, inEmpty: 0, notInEmpty: 1, notInside: 0, "we`ird": 7 });
  });

  it("bounds a key of any length to what ormq_rate_claims.key holds, the same value to the same key", async () => {
    const long = "é".repeat(5_000);
    const values: unknown[] = [];
    const p = mysqlSql.parts(values);
    const [row] = await rows(`SELECT ${p.boundedKey(p.param(long, "text"))} AS k1, ${p.boundedKey(p.param(long, "text"))} AS k2, ${p.boundedKey("NULL")} AS none`, values);
    expect(row.k1).toBe(row.k2);
    expect(String(row.k1).length).toBeLessThanOrEqual(600);
    expect(row.none).toBeNull();
    await db.query("INSERT INTO ormq_rate_claims (`key`, until) VALUES (?, 1)", [row.k1]); // fits the column
  });

  it("the limited pick takes no more than a per-key concurrency limit leaves room for, counting running tasks", async () => {
    for (const label of ["k1", "k1", "k1", "k2", "k2", null]) await add("lim", "q", label);
    const limits: ClaimLimits = { ...NO_LIMITS, types: [{ type: "lim", column: "label", max: 2 }] };
    const first = await pick(limits, ["lim"]);
    const labels = async (ids: string[]) => (await rows(`SELECT label FROM ormq_tasks WHERE id IN (${ids.join(", ")}) ORDER BY id`)).map((r) => r.label);
    expect(await labels(first)).toEqual(["k1", "k1", "k2", "k2", null]);
    await claim(first);
    expect(await pick(limits, ["lim"])).toEqual([]); // every key is at its limit (null is a key too)
    await db.query("UPDATE ormq_tasks SET status = 'succeeded' WHERE id = ?", [first[0]]);
    expect(await labels(await pick(limits, ["lim"]))).toEqual(["k1"]);
  });

  it("the limited pick keeps claim order (priority, then due time, then id) and a queue limit across types", async () => {
    await add("a", "shared", null, 0, 5);
    await add("b", "shared", null, 9, 5);
    await add("a", "shared", null, 0, 1);
    const ids = (await rows("SELECT id FROM ormq_tasks ORDER BY id")).map((r) => String(r.id));
    const limits: ClaimLimits = { ...NO_LIMITS, queues: [{ queue: "shared", max: 2 }] };
    expect(await pick(limits, ["a", "b"])).toEqual([ids[1], ids[2]]);
  });

  it("rate limits: the pick counts the window's records, and the records are written and pruned by the shared statements", async () => {
    for (let i = 0; i < 5; i++) await add("rated", "rq", "tenant");
    const limits: ClaimLimits = { ...NO_LIMITS, typeRates: [{ type: "rated", column: "label", max: 2, perMs: 60_000 }], queueRates: [{ queue: "rq", max: 3, perMs: 60_000 }] };
    const first = await pick(limits, ["rated"], 1_000);
    expect(first).toHaveLength(2);
    for (const statement of rateClaimsSql(TABLES.tasks, TABLES.rateClaims, (p) => p.param(1_000, "bigint"), limits, first, mysqlSql.parts)) {
      await db.query(statement.text, statement.values);
    }
    expect((await rows("SELECT count(*) AS n FROM ormq_rate_claims"))[0].n).toBe("4"); // two per task: its type's key and its queue's
    await claim(first);
    expect(await pick(limits, ["rated"], 30_000)).toEqual([]); // within the window
    expect(await pick(limits, ["rated"], 61_001)).toHaveLength(2); // the window has passed
    const [prune] = rateClaimsSql(TABLES.tasks, TABLES.rateClaims, (p) => p.param(61_001, "bigint"), limits, [], mysqlSql.parts);
    await db.query(prune.text, prune.values);
    expect((await rows("SELECT count(*) AS n FROM ormq_rate_claims"))[0].n).toBe("0");
  });

  it("the controls read, with its quoted `key`", async () => {
    await db.query("INSERT INTO ormq_controls (scope, name, paused, concurrency, updated_at) VALUES ('queue', 'q1', 1, 3, 0), ('type', 't1', 1, NULL, 0)");
    await db.query("INSERT INTO ormq_meta (`key`, value) VALUES ('schema_version', '3')");
    const controls = controlsOf(await rows(controlsSql(TABLES, mysqlSql)));
    expect({ ...controls, queueLimits: [...controls.queueLimits], queueRates: [...controls.queueRates] }).toEqual({
      pausedQueues: ["q1"],
      pausedTypes: ["t1"],
      queueLimits: [["q1", 3]],
      queueRates: [],
      schemaVersion: 3,
    });
  });
});

@ChildEntity("maria_plain")
class MariaPlain extends BaseTaskEntity {
  run() {
    return null;
  }
}

describeMaria("ormq on MariaDB: its migrations, save() and a worker, and the unique guard's key table", () => {
  let testDb: TestDb;
  let ds: DataSource;
  beforeAll(async () => {
    testDb = await createTestDb("mariadb");
    const base = ormqDataSourceOptions(testDb.url);
    ds = new DataSource({ ...base, entities: [...(base.entities as []), MariaPlain], migrationsRun: true, logging: false } as DataSourceOptions);
    await ds.initialize();
  });
  afterAll(async () => {
    await ds?.destroy();
    await testDb?.drop();
  });
  const insert = (m: { query: DataSource["query"] }, key: string, status = "pending") =>
    m.query("INSERT INTO ormq_tasks (type, queue, status, priority, run_at, max_attempts, created_at, updated_at, unique_key) VALUES ('u', 'default', ?, 0, 1, 1, 1, 1, ?)", [status, key]);

  it("a second standing task of a key fails its statement (1062), and the caller's transaction goes on", async () => {
    await ds.transaction(async (m) => {
      await insert(m, "k1");
      await expect(insert(m, "k1")).rejects.toMatchObject({ driverError: { errno: 1062 } });
      await insert(m, "k2"); // the transaction is still usable
    });
    expect((await ds.query("SELECT unique_key FROM ormq_tasks ORDER BY id")).map((r: { unique_key: string }) => r.unique_key)).toEqual(["k1", "k2"]);
  });

  it("a key is free again once its task finished or was deleted, and taken again by a requeue only if free", async () => {
    await ds.query("UPDATE ormq_tasks SET status = 'succeeded' WHERE unique_key = 'k1'");
    await insert(ds, "k1"); // free: the first finished
    await ds.query("DELETE FROM ormq_tasks WHERE unique_key = 'k2' AND status = 'pending'");
    await insert(ds, "k2"); // free: the holder was deleted
    // A finished k1 made pending again while another k1 stands: refused.
    await expect(ds.query("UPDATE ormq_tasks SET status = 'pending' WHERE unique_key = 'k1' AND status = 'succeeded'")).rejects.toMatchObject({ driverError: { errno: 1062 } });
    expect(await ds.query("SELECT unique_key FROM ormq_unique_keys ORDER BY unique_key")).toEqual([{ unique_key: "k1" }, { unique_key: "k2" }]);
  });

  it("the unique guard is reported installed; ormq never installs it on a caller's connection (DDL commits there)", async () => {
    const contract = contractOf(ds);
    expect(await contract.schema.uniqueGuard.installed(ds, tablesOf(ds).tasks)).toBe("committed");
    expect(contract.schema.ddlCommits).toBe(true);
  });

  it("save() enqueues (ids as strings, ormq's defaults applied), and a worker runs the task", async () => {
    const task = await ds.getRepository(MariaPlain).save(MariaPlain.create({}));
    expect(typeof task.id).toBe("string");
    const [row] = await ds.query("SELECT status, queue, attempts FROM ormq_tasks WHERE id = ?", [task.id]);
    expect({ ...row }).toEqual({ status: "pending", queue: "default", attempts: 0 });
    expect(await processN(MariaPlain, 1, { dataSource: ds, logger: memoryLogger().logger })).toMatchObject({ processed: 1, succeeded: 1 });
    expect((await ds.query("SELECT status FROM ormq_tasks WHERE id = ?", [task.id]))[0].status).toBe("succeeded");
  });

  it("a fair claim without the fair index (its worker could not make it) claims without naming it, and says so once", async () => {
    await ds.query("DELETE FROM ormq_tasks");
    const made = await ds.query("SELECT 1 FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = 'ormq_tasks' AND index_name = 'ormq_tasks_fair'");
    if (made.length > 0) await ds.query("DROP INDEX ormq_tasks_fair ON ormq_tasks");
    for (let i = 0; i < 3; i++) {
      await ds.query("INSERT INTO ormq_tasks (type, queue, status, priority, run_at, max_attempts, created_at, updated_at, fair_key) VALUES ('f', 'default', 'pending', 0, 1, 1, 1, 1, 'A')");
    }
    const { logger, lines } = memoryLogger();
    // A dialect that never registered a worker: nothing made the index.
    const dialect = createDialect(ds, "fair-worker", logger);
    try {
      const request: ClaimRequest = { types: ["f"], queues: null, limit: 2, leaseMs: 60_000, fair: { type: "f", weights: new Map() } };
      expect(await dialect.claim(request)).toHaveLength(2);
      expect(await dialect.claim(request)).toHaveLength(1);
      expect(lines.filter((l) => l.msg?.includes("the fair claim's index is missing"))).toHaveLength(1);
    } finally {
      await dialect.close();
    }
    await ds.query("DELETE FROM ormq_tasks");
  });

  it("a deadlock (1213) runs the transaction again: never a failed attempt, counted in the metrics", async () => {
    // A trigger that fails the next three updates of ormq_tasks as a deadlock does. Its count is
    // in a MyISAM table: not transactional, so the rollback of the failed statement keeps it.
    await ds.query("CREATE TABLE test_deadlocks (n int NOT NULL) ENGINE=MyISAM");
    await ds.query("INSERT INTO test_deadlocks VALUES (3)");
    await ds.query(`CREATE TRIGGER test_deadlock BEFORE UPDATE ON ormq_tasks FOR EACH ROW
      BEGIN
        IF (SELECT n FROM test_deadlocks) > 0 THEN
          UPDATE test_deadlocks SET n = n - 1;
          SIGNAL SQLSTATE '40001' SET MYSQL_ERRNO = 1213, MESSAGE_TEXT = 'Deadlock found when trying to get lock (test)';
        END IF;
      END`);
    try {
      const task = await ds.getRepository(MariaPlain).save(MariaPlain.create({}));
      const metrics = createMetrics();
      const retried: string[] = [];
      const off = ormqFor(ds).on("database:retried", (e) => retried.push(e.reason));
      try {
        expect(await processN(MariaPlain, 1, { dataSource: ds, logger: memoryLogger().logger, metrics })).toMatchObject({ processed: 1, succeeded: 1, failed: 0, retried: 0 });
      } finally {
        off();
      }
      expect((await ds.query("SELECT status, attempts FROM ormq_tasks WHERE id = ?", [task.id])).map((r: object) => ({ ...r }))).toEqual([{ status: "succeeded", attempts: 1 }]);
      expect((await ds.query("SELECT n FROM test_deadlocks"))[0].n).toBe(0);
      expect(retried).toEqual(["deadlock", "deadlock", "deadlock"]);
      expect(await metrics.registry.metrics()).toMatch(/^ormq_database_retries_total\{reason="deadlock"\} 3$/m);
    } finally {
      await ds.query("DROP TRIGGER IF EXISTS test_deadlock");
      await ds.query("DROP TABLE IF EXISTS test_deadlocks");
    }
  });
});

describeMaria("inserts without INSERT … RETURNING (MySQL 8's path, taken on MariaDB by reporting a MySQL version)", () => {
  let testDb: TestDb;
  let ds: DataSource;
  beforeAll(async () => {
    testDb = await createTestDb("mariadb");
    ds = await openDataSource(testDb, [MariaPlain, SyncAccount]);
    // What TypeORM reads from a MySQL 8 server; ormq then takes the path without RETURNING.
    (ds.driver as unknown as { version: string }).version = "8.0.36";
    expect(serverHasInsertReturning(ds)).toBe(false);
  });
  afterAll(async () => {
    await ds?.destroy();
    await testDb?.drop();
  });

  it("enqueueMany learns each row's own id, in order, from the statement's first insert id", async () => {
    const tasks = Array.from({ length: 2_500 }, (_, i) => MariaPlain.create({ priority: i % 1000 }));
    await enqueueMany(tasks, { dataSource: ds });
    const stored = new Map(((await ds.query("SELECT id, priority FROM ormq_tasks WHERE type = 'maria_plain'")) as { id: string; priority: number }[]).map((r) => [String(r.id), r.priority]));
    expect(stored.size).toBe(2_500);
    tasks.forEach((t, i) => expect([i, stored.get(t.id)]).toEqual([i, i % 1000]));
    const ids = tasks.map((t) => BigInt(t.id));
    expect(ids.every((id, i) => i === 0 || id > ids[i - 1])).toBe(true);
  });

  it("rows the unique guard may skip go one INSERT each: a duplicate is skipped, the others learn their ids", async () => {
    const [heldId] = await enqueueMany([SyncAccount.create({ accountId: "a1", note: "first" })], { dataSource: ds });
    const batch = [SyncAccount.create({ accountId: "a2", note: "new" }), SyncAccount.create({ accountId: "a1", note: "duplicate" }), SyncAccount.create({ accountId: "a3", note: "new" })];
    await ds.transaction(async (manager) => {
      await enqueueMany(batch, { manager });
      await manager.query("SELECT 1"); // the transaction goes on
    });
    const rows = (await ds.query("SELECT id, `accountId` AS account, note FROM ormq_tasks WHERE type = 'sync_account' ORDER BY id")) as { id: string; account: string; note: string }[];
    expect(rows.map((r) => [r.account, r.note])).toEqual([["a1", "first"], ["a2", "new"], ["a3", "new"]]);
    expect(batch[0].id).toBe(String(rows[1].id));
    expect(batch[2].id).toBe(String(rows[2].id));
    expect(batch[1].id).toBe(heldId); // the duplicate learns the standing task's id
  });
});
