/**
 * What ormq's migrations and unique guard create on MySQL and MariaDB (see docs/mysql.md): indexes
 * without WHERE, and the unique guard as a table of the standing keys kept by triggers.
 */
import type { DataSource, QueryRunner } from "typeorm";
import type { GuardState, IndexSpec } from "../contract";
import { quoteIdentifier } from "./sql";

const escape = quoteIdentifier;

/**
 * ormq's indexed text columns: indexed on their first 512 characters, which hold all of a key
 * (ormq stores a long key as its SHA-256, see src/flow/uniqueSpec.ts), so a unique index on the
 * prefix is unique on the whole value.
 */
const TEXT_KEY_COLUMNS = new Set(["unique_key", "unique_window"]);
const KEY_LENGTH = 512;

/** CREATE INDEX without WHERE: see IndexSpec.withoutWhere. */
export function createIndexSql(index: IndexSpec): string | null {
  if (index.where && (index.withoutWhere === undefined || index.withoutWhere === "none")) return null;
  const lead = index.where && typeof index.withoutWhere === "object" ? index.withoutWhere.lead : [];
  const columns = [...lead, ...index.columns].map((column) =>
    column.replace(/^(\S+)/, (name) => (TEXT_KEY_COLUMNS.has(name) ? `${escape(name)}(${KEY_LENGTH})` : escape(name))),
  );
  return `CREATE ${index.unique ? "UNIQUE " : ""}INDEX ${escape(index.name)} ON ${index.table} (${columns.join(", ")})`;
}

/** DROP INDEX, which MySQL names per table; nothing for an index createIndexSql did not make. */
export function dropIndexSql(index: Pick<IndexSpec, "name" | "table" | "where" | "withoutWhere">): string | null {
  if (index.where && (index.withoutWhere === undefined || index.withoutWhere === "none")) return null;
  return `DROP INDEX ${escape(index.name)} ON ${index.table}`;
}

const TRIGGERS = ["ormq_unique_insert", "ormq_unique_update", "ormq_unique_delete"];
const STANDING = `IN ('pending', 'running')`;

/** `name` in the database of `table` (`` `db`.`ormq_tasks` `` → `` `db`.`name` ``). */
function siblingName(table: string, name: string): string {
  return table.replace(/`(?:[^`]|``)*`$/, escape(name));
}

/**
 * The unique guard: `ormq_unique_keys` holds the key of every pending or running task; triggers
 * keep it as tasks are inserted, change status and are deleted. A second standing task of a key
 * fails its statement with 1062, which rolls back that statement only (InnoDB), never the caller's
 * transaction. DDL commits on MySQL: these run only outside a caller's transaction (migrations).
 */
export function uniqueGuardStatements(tasks: string): string[] {
  const keys = siblingName(tasks, "ormq_unique_keys");
  return [
    // The key's unique index is named: a refusal by it (1062 "for key 'ormq_unique_key_standing'")
    // is how ormq tells a duplicate unique task from any other error (see guardDuplicates.ts).
    `CREATE TABLE IF NOT EXISTS ${keys} (unique_key varchar(${KEY_LENGTH}) NOT NULL, UNIQUE KEY ormq_unique_key_standing (unique_key)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
    `CREATE TRIGGER IF NOT EXISTS ${siblingName(tasks, "ormq_unique_insert")} BEFORE INSERT ON ${tasks} FOR EACH ROW
     BEGIN
       IF NEW.unique_key IS NOT NULL AND NEW.status ${STANDING} THEN INSERT INTO ${keys} (unique_key) VALUES (NEW.unique_key); END IF;
     END`,
    `CREATE TRIGGER IF NOT EXISTS ${siblingName(tasks, "ormq_unique_update")} BEFORE UPDATE ON ${tasks} FOR EACH ROW
     BEGIN
       IF OLD.unique_key IS NOT NULL AND OLD.status ${STANDING} AND NOT (NEW.status ${STANDING} AND NEW.unique_key <=> OLD.unique_key) THEN
         DELETE FROM ${keys} WHERE unique_key = OLD.unique_key;
       END IF;
       IF NEW.unique_key IS NOT NULL AND NEW.status ${STANDING} AND NOT (OLD.status ${STANDING} AND OLD.unique_key <=> NEW.unique_key) THEN
         INSERT INTO ${keys} (unique_key) VALUES (NEW.unique_key);
       END IF;
     END`,
    `CREATE TRIGGER IF NOT EXISTS ${siblingName(tasks, "ormq_unique_delete")} AFTER DELETE ON ${tasks} FOR EACH ROW
     BEGIN
       IF OLD.unique_key IS NOT NULL AND OLD.status ${STANDING} THEN DELETE FROM ${keys} WHERE unique_key = OLD.unique_key; END IF;
     END`,
  ];
}

/** The statements that remove it. */
export function dropUniqueGuardStatements(tasks: string): string[] {
  return [...TRIGGERS.map((t) => `DROP TRIGGER IF EXISTS ${siblingName(tasks, t)}`), `DROP TABLE IF EXISTS ${siblingName(tasks, "ormq_unique_keys")}`];
}

/** Whether the guard's triggers are there (the catalog is not transactional on MySQL: what it says is committed). */
export async function uniqueGuardInstalled(dataSource: DataSource, tasks: string, runner?: QueryRunner): Promise<GuardState> {
  const database = /^`((?:[^`]|``)*)`\./.exec(tasks)?.[1]?.replace(/``/g, "`") ?? null;
  const rows = (await (runner ?? dataSource).query(
    `SELECT count(*) AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = COALESCE(?, DATABASE()) AND TRIGGER_NAME IN (${TRIGGERS.map(() => "?").join(", ")})`,
    [database, ...TRIGGERS],
  )) as { n: unknown }[];
  return Number(rows[0]?.n) === TRIGGERS.length ? "committed" : "absent";
}
