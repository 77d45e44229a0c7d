import type { QueryRunner } from "typeorm";
import { contractOf } from "../src/dialect";
import type { IndexSpec } from "../src/dialect/contract";

/**
 * What ormq's migrations ask of the database's contract (src/dialect/contract.ts `schema`), so
 * that a migration says what it creates and each database says how: quoted names, indexes
 * (partial where the database has them), plain column adds, the generated key's type, the unique
 * guard. Plain ADD COLUMN rather than TypeORM's addColumn: that rebuilds a SQLite table, which
 * would lose what decorators cannot say (the claim index's DESC, the unique guard's triggers).
 */
export function schemaParts(runner: QueryRunner) {
  const contract = contractOf(runner.connection);
  const q = contract.sql.escape;
  return {
    /** A quoted identifier. */
    q,
    generatedIdType: contract.schema.generatedIdType,
    uniqueGuard: contract.schema.uniqueGuard,
    createIndex: async (name: string, table: string, columns: readonly string[], options: Pick<IndexSpec, "where" | "unique" | "withoutWhere"> = {}) => {
      const sql = contract.schema.createIndex({ name, table: q(table), columns, ...options });
      if (sql) await runner.query(sql);
    },
    /** `options`: what createIndex was given, so that a database which made no such index drops none. */
    dropIndex: async (name: string, table: string, options: Pick<IndexSpec, "where" | "withoutWhere"> = {}) => {
      const sql = contract.schema.dropIndex({ name, table: q(table), ...options });
      if (sql) await runner.query(sql);
    },
    /**
     * Rebuilds an index whose definition changed from `from` to `to`, on the databases where the
     * two make different indexes (a `withoutWhere` that changed matters only without partial
     * indexes): nothing where both are the same statement.
     */
    replaceIndex: async (name: string, table: string, columns: readonly string[], from: Pick<IndexSpec, "where" | "unique" | "withoutWhere">, to: Pick<IndexSpec, "where" | "unique" | "withoutWhere">) => {
      const before = contract.schema.createIndex({ name, table: q(table), columns, ...from });
      const after = contract.schema.createIndex({ name, table: q(table), columns, ...to });
      if (before === after) return;
      const drop = contract.schema.dropIndex({ name, table: q(table), ...from });
      if (drop) await runner.query(drop);
      if (after) await runner.query(after);
    },
    addColumn: (table: string, column: string, type: string) => runner.query(`ALTER TABLE ${q(table)} ADD COLUMN ${q(column)} ${type}`),
    dropColumn: (table: string, column: string) => runner.query(`ALTER TABLE ${q(table)} DROP COLUMN ${q(column)}`),
    /** ormq_meta's schema_version, which workers check (see controlsRead.ts). */
    setSchemaVersion: (version: number, how: "insert" | "update") =>
      how === "insert"
        ? runner.query(`INSERT INTO ${q("ormq_meta")} (${q("key")}, ${q("value")}) VALUES ('schema_version', '${version}')`)
        : runner.query(`UPDATE ${q("ormq_meta")} SET ${q("value")} = '${version}' WHERE ${q("key")} = 'schema_version'`),
  };
}
