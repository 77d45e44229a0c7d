import type { Logger as TypeOrmLogger } from "typeorm";
import type { DataSource } from "typeorm";
import { BaseTaskEntity, type ProcessSummary } from "../../src";

/** Reads a task's row fresh from the database, as the base class sees it. */
export async function reload<T extends BaseTaskEntity>(ds: DataSource, task: { id: string }): Promise<T> {
  return (await ds.getRepository(BaseTaskEntity).findOneByOrFail({ id: task.id })) as T;
}

/** Makes every pending task due now (in place of waiting out a retry delay). */
export async function makeAllDue(ds: DataSource): Promise<void> {
  await ds.query(`UPDATE ormq_tasks SET run_at = 0 WHERE status = 'pending'`);
}

/** Resolves when `check` returns true; polls quickly; fails with `what` after `ms`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A worker summary with zeroes for every count not given. */
export function expectedSummary(counts: Partial<ProcessSummary>): ProcessSummary {
  return { processed: 0, succeeded: 0, failed: 0, retried: 0, snoozed: 0, cancelled: 0, heldBack: 0, ...counts };
}

/** A TypeORM logger that keeps every statement it is shown, in order (and logs nothing else). */
export function statementLog(): { statements: string[]; logger: TypeOrmLogger } {
  const statements: string[] = [];
  const ignore = () => {};
  return {
    statements,
    logger: { logQuery: (query) => void statements.push(query), logQueryError: ignore, logQuerySlow: ignore, logSchemaBuild: ignore, logMigration: ignore, log: ignore },
  };
}

/** Runs `fn` in an async flow of its own, as a request handler runs (SQLite's guard tells flows apart). */
export function inOwnFlow<T>(fn: () => Promise<T>): Promise<T> {
  return new Promise<void>((resolve) => setImmediate(resolve)).then(fn);
}
