/**
 * SQLite's guard for unique tasks: BEFORE triggers that skip (RAISE(IGNORE)) the insert of a task
 * whose key stands, or a requeue onto a held key, instead of letting the unique index refuse it.
 * SQLite runs one writer at a time, so the check and the write cannot be interleaved by another
 * connection. An ignored insert leaves TypeORM the connection's previous insert id: the enqueue
 * asks `changes()` instead (uniqueInsertSkipped).
 */

import Database from "better-sqlite3";
import type { DataSource, QueryRunner } from "typeorm";

/** The statements that install the guard on `tasks` (escaped). */
export function uniqueGuardStatements(tasks: string): string[] {
  const held = `EXISTS (SELECT 1 FROM ${tasks} o WHERE o.unique_key = NEW.unique_key AND o.status IN ('pending', 'running') AND o.id <> NEW.id)`;
  return [
    // IF NOT EXISTS, with no DROP first: an install that races another process's (after a table
    // rebuild dropped the triggers) never leaves a moment without the guard.
    `CREATE TRIGGER IF NOT EXISTS ormq_unique_insert BEFORE INSERT ON ${tasks}
     WHEN NEW.unique_key IS NOT NULL AND (
       EXISTS (SELECT 1 FROM ${tasks} o WHERE o.unique_key = NEW.unique_key AND o.status IN ('pending', 'running'))
       OR (NEW.unique_window IS NOT NULL AND EXISTS (SELECT 1 FROM ${tasks} o WHERE o.unique_window = NEW.unique_window)))
     BEGIN SELECT RAISE(IGNORE); END`,
    `CREATE TRIGGER IF NOT EXISTS ormq_unique_requeue BEFORE UPDATE OF status ON ${tasks}
     WHEN NEW.unique_key IS NOT NULL AND OLD.status NOT IN ('pending', 'running') AND NEW.status IN ('pending', 'running') AND ${held}
     BEGIN SELECT RAISE(IGNORE); END`,
  ];
}

/** The statements that remove it. */
export function dropUniqueGuardStatements(): string[] {
  return [`DROP TRIGGER IF EXISTS ormq_unique_requeue`, `DROP TRIGGER IF EXISTS ormq_unique_insert`];
}

const INSTALLED = `SELECT count(*) AS n FROM sqlite_master WHERE type = 'trigger' AND name IN ('ormq_unique_insert', 'ormq_unique_requeue')`;

/**
 * Whether the guard is installed. Read on a connection of its own, which sees only committed
 * state: on TypeORM's, inside the first save's deferred transaction, a read before the insert
 * would make that insert fail at once with SQLITE_BUSY if another process wrote in between (the
 * snapshot could not become a write), and it would see an install the caller may roll back. An
 * in-memory database has only TypeORM's connection.
 */
export async function uniqueGuardInstalled(dataSource: DataSource): Promise<"committed" | "seen" | "absent"> {
  const file = String((dataSource.options as { database?: unknown }).database ?? "");
  if (file === "" || file === ":memory:") return (await dataSource.query<{ n: number }[]>(INSTALLED))[0]?.n === 2 ? "seen" : "absent";
  const db = new Database(file, { readonly: true, fileMustExist: true, timeout: 0 });
  try {
    return (db.prepare(INSTALLED).get() as { n: number }).n === 2 ? "committed" : "absent";
  } finally {
    db.close();
  }
}

/**
 * Whether the insert just made on `runner` was skipped by the guard: an ignored row is no change.
 * Asked right after the insert, inside its transaction, which holds the write lock: no other
 * statement of this process's connection can come in between.
 */
export async function uniqueInsertSkipped(runner: QueryRunner): Promise<boolean> {
  const rows = (await runner.query(`SELECT changes() AS n`)) as { n: number }[];
  return rows[0]?.n === 0;
}
