/**
 * PostgreSQL's guard for unique tasks: a BEFORE trigger that turns the insert of a task whose key
 * stands (or a requeue onto a held key) into no write at all, instead of letting the unique index
 * raise. A raised unique violation would abort the caller's transaction (TypeORM's `save()` sets
 * no savepoint), and `skip` and `replace` must leave it usable; the caller learns what happened
 * from the missing RETURNING row.
 *
 * Same-key writers are serialised by a transaction-scoped advisory lock on the key: the second
 * waits for the first to commit or roll back, and then (under READ COMMITTED, where each statement
 * of the function takes a fresh snapshot) sees the first's row. Under REPEATABLE READ or
 * SERIALIZABLE the check reads the transaction's snapshot and cannot see a row committed since: the
 * insert goes on and the unique index refuses it with 23505, which aborts that transaction, as a
 * write conflict does there (retry it). The unique indexes are the guarantee either way.
 */

import type { DataSource, QueryRunner } from "typeorm";

/** The advisory lock space of ormq's key locks ("ormq" as an int4); the second key is the key's hash. */
const LOCK_SPACE = 1869770097;

/** The statements that install the guard on `tasks` (escaped, possibly schema-qualified). */
export function uniqueGuardStatements(tasks: string): string[] {
  const fn = siblingName(tasks, "ormq_unique_guard");
  return [
    `CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(${LOCK_SPACE}, hashtext(NEW.unique_key));
  IF EXISTS (SELECT 1 FROM ${tasks} WHERE unique_key = NEW.unique_key AND status IN ('pending', 'running') AND id <> NEW.id)
     OR (TG_OP = 'INSERT' AND NEW.unique_window IS NOT NULL
         AND EXISTS (SELECT 1 FROM ${tasks} WHERE unique_window = NEW.unique_window)) THEN
    RETURN NULL;
  END IF;
  RETURN NEW;
END $$`,
    `DROP TRIGGER IF EXISTS ormq_unique_insert ON ${tasks}`,
    // Only tasks of unique classes pay for it: the WHEN clause is evaluated without calling the function.
    `CREATE TRIGGER ormq_unique_insert BEFORE INSERT ON ${tasks}
     FOR EACH ROW WHEN (NEW.unique_key IS NOT NULL) EXECUTE FUNCTION ${fn}()`,
    `DROP TRIGGER IF EXISTS ormq_unique_requeue ON ${tasks}`,
    // A finished task made pending again (retryTask, retryFailed) takes its key back only if free.
    `CREATE TRIGGER ormq_unique_requeue BEFORE UPDATE OF status ON ${tasks}
     FOR EACH ROW WHEN (NEW.unique_key IS NOT NULL AND OLD.status NOT IN ('pending', 'running') AND NEW.status IN ('pending', 'running'))
     EXECUTE FUNCTION ${fn}()`,
  ];
}

/** The statements that remove it. */
export function dropUniqueGuardStatements(tasks: string): string[] {
  return [
    `DROP TRIGGER IF EXISTS ormq_unique_requeue ON ${tasks}`,
    `DROP TRIGGER IF EXISTS ormq_unique_insert ON ${tasks}`,
    `DROP FUNCTION IF EXISTS ${siblingName(tasks, "ormq_unique_guard")}()`,
  ];
}

/** Whether the guard is installed on `tasks`, read on the caller's connection when given (never a second one from the pool). */
export async function uniqueGuardInstalled(dataSource: DataSource, tasks: string, runner?: QueryRunner): Promise<"seen" | "absent"> {
  const rows = (await (runner ?? dataSource).query(
    `SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = $1::regclass AND tgname IN ('ormq_unique_insert', 'ormq_unique_requeue')`,
    [tasks],
  )) as { n: number }[];
  return rows[0]?.n === 2 ? "seen" : "absent";
}

/** `name` in the schema of `table` (`"s"."ormq_tasks"` → `"s"."name"`). */
function siblingName(table: string, name: string): string {
  return table.replace(/"(?:[^"]|"")*"$/, `"${name}"`);
}
