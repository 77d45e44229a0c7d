/**
 * The statements of unique tasks on the application's connection: is the guard installed, which
 * task holds a key, and the replace of a pending duplicate. Through TypeORM's query builder (one
 * statement for both databases), on the caller's manager, inside its transaction when it has one.
 */
import type { DataSource, EntityManager, ObjectLiteral, QueryRunner } from "typeorm";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import type { TaskStatus } from "../../entities/status";
import { OrmqConfigurationError } from "../errors";
import { contractOf, tablesOf } from "./index";

/** A task that holds a unique key. */
export interface StandingTask {
  id: string;
  status: TaskStatus;
  uniqueKey: string;
}

/** What a DataSource's client knows of its unique guard (see ensureUniqueGuard). */
export class UniqueGuardState {
  /** The guard was seen committed: no more checks. */
  confirmed = false;
  /**
   * Query runners whose open transaction installed the guard: what they see of it may not be
   * committed yet (a rollback takes it away), so it confirms nothing.
   */
  readonly installedBy = new WeakSet<QueryRunner>();
}

/**
 * Checks that the guard trigger is there (ormq's OrmqUniqueTasks migration installs it), until it
 * has been seen committed once per DataSource (its `state`, held by the DataSource's client). A DataSource run with `synchronize` gets it
 * installed here, as synchronize installs the unique indexes, and so does SQLite (see
 * installWhenMissing); otherwise a missing guard is an error naming the migration, since without
 * it a duplicate would abort the caller's transaction instead of being skipped.
 *
 * Everything runs on the caller's own connection (`runner`), inside its transaction when it has
 * one: asking the pool for a second connection while the caller holds one deadlocks a burst of
 * first enqueues on a small pool. An install made inside the caller's transaction protects that
 * transaction's inserts and is rolled back with it, so it is not remembered: the next enqueue
 * looks again, and installs again after a rollback.
 */
export async function ensureUniqueGuard(state: UniqueGuardState, dataSource: DataSource, runner?: QueryRunner): Promise<void> {
  if (state.confirmed) return;
  const { uniqueGuard: guard, ddlCommits } = contractOf(dataSource).schema;
  const tasks = tablesOf(dataSource).tasks;
  const on = runner && !runner.isReleased ? runner : undefined;
  // Another process may be installing it at this moment (SQLite: "database is locked"): look
  // again, for about two seconds, before giving up.
  for (let attempt = 0; ; attempt++) {
    try {
      const seen = await guard.installed(dataSource, tasks, on);
      if (seen !== "absent") {
        if (seen === "committed" || !on || !state.installedBy.has(on)) state.confirmed = true;
        return;
      }
      if (ddlCommits || (!dataSource.options.synchronize && !guard.installWhenMissing)) {
        throw new OrmqConfigurationError(
          "unique tasks need ormq's guard trigger on ormq_tasks, which is missing: run ormq's migrations (OrmqUniqueTasks), or synchronize",
        );
      }
      for (const statement of guard.install(tasks)) await (on ?? dataSource).query(statement);
      if (on?.isTransactionActive) state.installedBy.add(on);
      else state.confirmed = true;
      return;
    } catch (err) {
      // Only a busy database is worth a second look; on PostgreSQL a failed statement has aborted
      // the caller's transaction, where nothing more can run.
      if (err instanceof OrmqConfigurationError || attempt >= 40 || !isBusy(err)) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown; driverError?: { code?: unknown } }).driverError?.code ?? (err as { code?: unknown }).code;
  return typeof code === "string" && code.startsWith("SQLITE_BUSY") || /database is locked/.test(String((err as Error)?.message));
}

/**
 * The tasks that hold these keys: unfinished with the same `unique_key`, or of the same window
 * whatever their status. An unfinished holder comes first for its key.
 */
export async function standingTasks(m: EntityManager, keys: readonly { key: string; window: string | null }[]): Promise<StandingTask[]> {
  const out: StandingTask[] = [];
  for (let i = 0; i < keys.length; i += KEYS_PER_READ) out.push(...(await standingOf(m, keys.slice(i, i + KEYS_PER_READ))));
  const unfinished = (s: TaskStatus) => (s === "pending" || s === "running" ? 0 : 1);
  return out.sort((a, b) => unfinished(a.status) - unfinished(b.status));
}

/** Keys or ids per statement: far below both databases' parameter limits. */
const KEYS_PER_READ = 1_000;

async function standingOf(m: EntityManager, keys: readonly { key: string; window: string | null }[]): Promise<StandingTask[]> {
  const windows = keys.map((k) => k.window).filter((w): w is string => w !== null);
  const query = m
    .getRepository(BaseTaskEntity)
    .createQueryBuilder("t")
    .select(["t.id AS id", "t.status AS status", "t.unique_key AS unique_key"])
    .where("(t.unique_key IN (:...keys) AND t.status IN ('pending', 'running'))", { keys: keys.map((k) => k.key) });
  if (windows.length > 0) query.orWhere("t.unique_window IN (:...windows)", { windows });
  const rows = await query.getRawMany<{ id: unknown; status: TaskStatus; unique_key: string }>();
  return rows.map((r) => ({ id: String(r.id), status: r.status, uniqueKey: r.unique_key }));
}

/** Whether the insert just made on `runner` was skipped by the guard (see the trait), or null: look at the id. */
export async function insertSkipped(runner: QueryRunner): Promise<boolean | null> {
  const ask = contractOf(runner.connection).enqueue.insertSkipped;
  return ask ? ask(runner) : null;
}

/** The unique keys of these tasks, by id (to tell which of a multi-row insert's rows went in). */
export async function uniqueKeysByIds(m: EntityManager, ids: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let i = 0; i < ids.length; i += KEYS_PER_READ) {
    const rows = await m
      .getRepository(BaseTaskEntity)
      .createQueryBuilder("t")
      .select(["t.id AS id", "t.unique_key AS unique_key"])
      .where("t.id IN (:...ids)", { ids: ids.slice(i, i + KEYS_PER_READ) })
      .getRawMany<{ id: unknown; unique_key: string }>();
    for (const r of rows) out.set(String(r.id), r.unique_key);
  }
  return out;
}

/**
 * `onConflict: "replace"`: the standing task takes the duplicate's data (`values`, the class's own
 * columns) and `runAt`, guarded by its still being pending with the same key. False when it was
 * not (claimed, or finished, in between): the duplicate is then skipped.
 */
export async function replacePending(m: EntityManager, cls: typeof BaseTaskEntity, id: string, key: string, values: ObjectLiteral): Promise<boolean> {
  const result = await m
    .createQueryBuilder()
    .update(cls)
    .set(values)
    .where("id = :id AND status = 'pending' AND unique_key = :key", { id, key })
    .execute();
  return result.affected === 1;
}
