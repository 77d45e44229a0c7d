/**
 * The library internals ormq relies on (src/dialect/libraryInternals.ts), one test each, against
 * the installed TypeORM and node-postgres: an upgrade that changes one fails here, by name.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Pool } from "pg";
import { DataSource, type Logger as TypeOrmLogger, type QueryRunner } from "typeorm";
import { statementLog } from "./support/helpers";
import { BaseTaskEntity, ormqEntities } from "../src";
import { installSqliteIntegerKey } from "../src/dialect";
import { narrowInsertReread, onSqliteRunnerMade, openClientsOf, patchMysqlQueryErrors, poolOf, resetTransactionDepth, SQLITE_BEGIN, transactionDepthOf, transformTo } from "../src/dialect/libraryInternals";
import { MysqlQueryRunner } from "typeorm/driver/mysql/MysqlQueryRunner";
import { QueryResult } from "typeorm";
import { SendEmail } from "./fixtures/tasks";
import { trackDataSource } from "./support/leaks";

/** A plain TypeORM DataSource on a temporary SQLite file (no ormq subscriber: TypeORM as it is). */
async function plainSqlite(logger?: TypeOrmLogger): Promise<{ ds: DataSource; done: () => Promise<void> }> {
  installSqliteIntegerKey(); // DDL only: ormq's 64-bit key, which SQLite refuses as TypeORM writes it
  const dir = mkdtempSync(join(tmpdir(), "ormq-internals-"));
  const ds = trackDataSource(new DataSource({ type: "better-sqlite3", database: join(dir, "x.sqlite"), entities: [...ormqEntities, SendEmail], synchronize: true, logger, logging: logger ? "all" : false }));
  await ds.initialize();
  return {
    ds,
    done: async () => {
      await ds.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe("TypeORM's and node-postgres's internals ormq relies on", () => {
  it("driver.master is the pg Pool of a PostgreSQL DataSource, and pg-pool lists its open clients in _clients", async () => {
    const ds = trackDataSource(new DataSource({ type: "postgres", url: process.env.ORMQ_TEST_PG_URL }));
    expect(poolOf(ds)).toBeUndefined(); // before it connects
    await ds.initialize();
    try {
      const pool = poolOf(ds);
      expect(pool).toBeInstanceOf(Pool);
      await ds.query("SELECT 1");
      const clients = openClientsOf(pool!);
      expect(clients.length).toBeGreaterThanOrEqual(1);
      expect(typeof clients[0].query).toBe("function");
    } finally {
      await ds.destroy();
    }
  });

  it("the SQLite query runner begins a transaction with exactly BEGIN TRANSACTION, and counts its depth in transactionDepth", async () => {
    const { statements: sent, logger } = statementLog();
    const { ds, done } = await plainSqlite(logger);
    try {
      sent.length = 0;
      const runner = ds.createQueryRunner();
      await runner.startTransaction();
      expect((runner as unknown as { transactionDepth: unknown }).transactionDepth).toBe(1);
      expect(transactionDepthOf(runner)).toBe(1);
      await runner.startTransaction(); // a savepoint
      expect(transactionDepthOf(runner)).toBe(2);
      await runner.commitTransaction();
      await runner.commitTransaction();
      expect((runner as unknown as { transactionDepth: unknown }).transactionDepth).toBe(0);
      expect(sent).toContain(SQLITE_BEGIN);
      // A BEGIN that failed leaves the depth counted: reset, the next start is a real BEGIN again.
      (runner as unknown as { transactionDepth: number }).transactionDepth = 1;
      resetTransactionDepth(runner);
      sent.length = 0;
      await runner.startTransaction();
      await runner.rollbackTransaction();
      expect(sent[0]).toBe(SQLITE_BEGIN);
      await runner.release();
    } finally {
      await done();
    }
  });

  it("BetterSqlite3Driver.prototype.createQueryRunner makes one runner per DataSource, and onSqliteRunnerMade is told of it once", async () => {
    const told: { runner: QueryRunner; dataSource: DataSource }[] = [];
    onSqliteRunnerMade(Symbol("test"), (runner, dataSource) => told.push({ runner, dataSource }));
    const { ds, done } = await plainSqlite();
    try {
      const runner = ds.createQueryRunner();
      expect(ds.createQueryRunner()).toBe(runner);
      const mine = told.filter((t) => t.dataSource === ds);
      expect(mine).toHaveLength(1);
      expect(mine[0].runner).toBe(runner);
    } finally {
      await done();
    }
  });

  it("AbstractSqliteDriver.prototype.normalizeType names column types in DDL, and the patch maps the 64-bit key to integer", async () => {
    installSqliteIntegerKey();
    const { ds, done } = await plainSqlite();
    try {
      const normalize = (c: object) => ds.driver.normalizeType(c as never);
      expect(normalize({ type: "bigint", isPrimary: true, isGenerated: true, generationStrategy: "increment" })).toBe("integer");
      expect(normalize({ type: "bigint" })).toBe("bigint");
      expect(normalize({ type: "varchar" })).toBe("varchar");
    } finally {
      await done();
    }
  });

  it("EntityMetadata.getInsertionReturningColumns lists what SQLite reads back after an insert, and can be narrowed", async () => {
    const { ds, done } = await plainSqlite();
    try {
      const metadata = ds.getMetadata(SendEmail);
      const names = () => metadata.getInsertionReturningColumns().map((c) => c.propertyName);
      expect(names()).toEqual(expect.arrayContaining(["status", "attempts"]));
      narrowInsertReread(metadata, (c) => !(c.target === BaseTaskEntity && ["status", "attempts"].includes(c.propertyName)));
      expect(names()).not.toContain("status");
      expect(names()).not.toContain("attempts");
    } finally {
      await done();
    }
  });

  it("ApplyValueTransformers.transformTo writes a value through a column's transformer (one, or a list in order)", () => {
    const double = { to: (v: number) => v * 2, from: (v: number) => v / 2 };
    const plusOne = { to: (v: number) => v + 1, from: (v: number) => v - 1 };
    expect(transformTo(double, 21)).toBe(42);
    expect(transformTo([double, plusOne], 20)).toBe(41);
    expect(transformTo(undefined, "as is")).toBe("as is");
  });

  it("MysqlQueryRunner.prototype.query is what a MySQL statement goes through, and the patch answers for a failed one in its place", async () => {
    // A released runner: TypeORM's own query refuses it at once, without a server.
    const released = Object.assign(Object.create(MysqlQueryRunner.prototype) as MysqlQueryRunner, { isReleased: true });
    await expect(released.query("SELECT 1")).rejects.toThrow(/released/i);
    const seen: string[] = [];
    const marker = Symbol("test");
    patchMysqlQueryErrors(marker, (err, sql) => {
      seen.push(sql);
      return sql === "SELECT 'answered'" ? { raw: ["raw"], records: ["row"], affected: 0 } : undefined;
    });
    patchMysqlQueryErrors(marker, () => ({ raw: "twice", records: [], affected: 0 })); // once per marker
    expect(await released.query("SELECT 'answered'")).toEqual(["raw"]);
    const structured = await released.query("SELECT 'answered'", [], true);
    expect(structured).toBeInstanceOf(QueryResult);
    expect(structured).toMatchObject({ raw: ["raw"], records: ["row"], affected: 0 });
    await expect(released.query("SELECT 'not answered'")).rejects.toThrow(/released/i);
    expect(seen).toEqual(["SELECT 'answered'", "SELECT 'answered'", "SELECT 'not answered'"]);
  });
});
