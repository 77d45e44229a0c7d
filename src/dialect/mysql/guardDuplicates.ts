/**
 * MySQL's unique guard fails a duplicate's INSERT with 1062 (its key table, or the unique window's
 * index), where PostgreSQL's and SQLite's write nothing. The statement alone is rolled back, never
 * the caller's transaction (InnoDB), so ormq answers for it as if nothing had been written: an
 * empty result (no RETURNING row, no insert id), and the runner remembers that its last insert
 * was skipped (`insertSkipped`, which the enqueue asks, as it asks SQLite's `changes()`); an
 * UPDATE (a requeue onto a held key) changed no row. Only a one-row INSERT into, or an UPDATE of,
 * ormq_tasks refused by one of those two keys is answered; any other error goes on.
 */
import type { QueryRunner } from "typeorm";
import { patchMysqlQueryErrors } from "../libraryInternals";

/** The unique keys whose refusal means "a duplicate unique task" (see schema.ts). */
const GUARD_KEYS = /for key '(?:[^']*\.)?(ormq_unique_key_standing|ormq_tasks_unique_window)'/;
const TASK_INSERT = /^\s*INSERT INTO (?:`[^`]*`\.)?`ormq_tasks`/i;
const TASK_UPDATE = /^\s*UPDATE (?:`[^`]*`\.)?`ormq_tasks`/i;
/** More than one row (`VALUES (…), (…)`): a refusal rolled all of them back, so it is not answered. */
const MANY_ROWS = /\)\s*,\s*\(/;
const PATCHED = Symbol.for("ormq.mysqlGuardDuplicates");

const skipped = new WeakSet<QueryRunner>();

/**
 * Installs the answer, once per process, when a DataSource with ormq's subscriber is built
 * (src/setup.ts): before its first save, whatever the database (it acts on MySQL's runners only).
 */
export function answerGuardDuplicates(): void {
  patchMysqlQueryErrors(PATCHED, (err, sql, runner) => {
    const e = err as { driverError?: { errno?: unknown; message?: unknown }; errno?: unknown; message?: unknown };
    const errno = e.driverError?.errno ?? e.errno;
    const message = String(e.driverError?.message ?? e.message ?? "");
    if (errno !== 1062 || !GUARD_KEYS.test(message)) return undefined;
    // A requeue onto a key another task holds: the statement changed nothing, as on PostgreSQL,
    // where the guard turns it into no write (the caller's row count says so).
    if (TASK_UPDATE.test(sql)) return { raw: { affectedRows: 0, changedRows: 0 }, records: [], affected: 0 };
    if (!TASK_INSERT.test(sql)) return undefined;
    const values = sql.search(/\bVALUES\b/i);
    if (values < 0 || MANY_ROWS.test(sql.slice(values))) return undefined;
    skipped.add(runner);
    // MariaDB's INSERT … RETURNING gives rows (none here); MySQL's INSERT gives a header.
    const raw = /\bRETURNING\b/i.test(sql) ? [] : { affectedRows: 0, insertId: 0 };
    return { raw, records: [], affected: 0 };
  });
}

/** Whether the last insert on `runner` was a duplicate the guard refused (and forgets it). */
export async function guardSkippedInsert(runner: QueryRunner): Promise<boolean> {
  const was = skipped.has(runner);
  skipped.delete(runner);
  return was;
}
