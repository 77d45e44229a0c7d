/**
 * `ormq/testing`: helpers for an application's own tests, as Oban.Testing gives them. Run what a
 * test enqueued, in the test, until nothing is ready; assert that a task was (or was not)
 * enqueued with given columns; and open a fresh database with ormq's schema for a test file.
 */
import { AssertionError } from "node:assert";
import { randomUUID } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DataSource, type DataSourceOptions, type FindOptionsWhere } from "typeorm";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { ormqDataSourceOptions } from "../config";
import { createScratchDatabase } from "../dialect/scratchDatabase";
import { resolveDataSource } from "../dataSource";
import { InvalidOptionError } from "../errors";
import { createLogger } from "../logger";
import type { TaskClass } from "../registry";
import type { WorkerOptions } from "../worker/options";
import { processN } from "../worker/run";
import type { ProcessSummary } from "../worker/worker";

/**
 * Runs, in this process, every task of `taskClass` (and its subclasses; every class for
 * `BaseTaskEntity`) that is ready now, and those their runs enqueue, until none is ready and none
 * runs. A retry with a delay, a snooze or a task due later is left pending: set its `runAt` in the
 * test to run it. Resolves with what ran. Options are a worker's (`dataSource` among them); the
 * scheduler is off and ormq's log is at warn unless given.
 */
export function runEnqueued(taskClass: TaskClass = BaseTaskEntity, options: WorkerOptions = {}): Promise<ProcessSummary> {
  return processN(taskClass, Number.MAX_SAFE_INTEGER, {
    scheduler: false,
    logger: options.logger ?? createLogger("warn"),
    ...options,
  });
}

/** Options of the enqueued-task assertions. */
export interface EnqueuedOptions {
  /** Default: the DataSource the class is bound to. */
  dataSource?: DataSource;
}

/** The pending tasks of `taskClass` whose columns match `where` (TypeORM's `where`), oldest first. */
export async function enqueuedTasks<T extends BaseTaskEntity>(
  taskClass: TaskClass<T>,
  where: FindOptionsWhere<T> = {},
  options: EnqueuedOptions = {},
): Promise<T[]> {
  const dataSource = resolveDataSource(taskClass, options.dataSource);
  if (!dataSource.hasMetadata(taskClass)) throw new InvalidOptionError(`enqueuedTasks: ${taskClass.name} is not among the DataSource's entities`);
  const repository = dataSource.getRepository<T>(taskClass);
  return repository.find({ where: { ...where, status: "pending" } as FindOptionsWhere<T>, order: { id: "ASC" } as never });
}

/**
 * Asserts that at least one pending task of `taskClass` matches `where`; resolves with the
 * matches. Fails with an `AssertionError` that lists the pending tasks of that class (at most 10)
 * when none does.
 */
export async function assertEnqueued<T extends BaseTaskEntity>(taskClass: TaskClass<T>, where: FindOptionsWhere<T> = {}, options: EnqueuedOptions = {}): Promise<T[]> {
  const found = await enqueuedTasks(taskClass, where, options);
  if (found.length > 0) return found;
  const pending = await enqueuedTasks(taskClass, {}, options);
  throw new AssertionError({
    message:
      `expected a pending ${taskClass.name} task matching ${shown(where)}; ` +
      (pending.length === 0 ? "none is pending" : `pending: ${pending.slice(0, 10).map(shown).join(", ")}${pending.length > 10 ? ` and ${pending.length - 10} more` : ""}`),
    actual: pending,
    expected: where,
    operator: "assertEnqueued",
  });
}

/** Asserts that no pending task of `taskClass` matches `where`. */
export async function refuteEnqueued<T extends BaseTaskEntity>(taskClass: TaskClass<T>, where: FindOptionsWhere<T> = {}, options: EnqueuedOptions = {}): Promise<void> {
  const found = await enqueuedTasks(taskClass, where, options);
  if (found.length === 0) return;
  throw new AssertionError({
    message: `expected no pending ${taskClass.name} task matching ${shown(where)}; found ${found.length}: ${found.slice(0, 10).map(shown).join(", ")}`,
    actual: found,
    expected: [],
    operator: "refuteEnqueued",
  });
}

/** A test's own database, and how to get rid of it. */
export interface TestDatabase {
  dataSource: DataSource;
  /** Closes the DataSource and deletes the database (the SQLite file, or the PostgreSQL database). */
  drop(): Promise<void>;
}

/**
 * Opens a new, empty database with ormq's schema (its migrations run) and `entities` (your task
 * classes, and your own entities, synchronized): a temporary SQLite file by default, or, given
 * the URL of a PostgreSQL server, a new database on it (`CREATE DATABASE`: the URL's user needs
 * the right). Task classes are bound to it (`Task.create().save()` writes there).
 */
export async function createTestDatabase(options: { entities?: DataSourceOptions["entities"]; url?: string } = {}): Promise<TestDatabase> {
  const entities = Array.isArray(options.entities) ? options.entities : [];
  let url: string;
  let dropDatabase: () => Promise<void>;
  if (options.url && /^postgres(ql)?:\/\//.test(options.url)) {
    ({ url, drop: dropDatabase } = await createScratchDatabase(options.url));
  } else {
    if (options.url !== undefined) throw new InvalidOptionError("createTestDatabase: url must be a postgres:// URL (leave it out for a temporary SQLite file)");
    const dir = join(tmpdir(), `ormq-test-${randomUUID()}`);
    mkdirSync(dir, { recursive: true });
    url = join(dir, "test.sqlite");
    dropDatabase = async () => rmSync(dir, { recursive: true, force: true });
  }
  const base = ormqDataSourceOptions(url);
  const dataSource = new DataSource({ ...base, entities: [...(base.entities as unknown[]), ...entities], migrationsRun: true, logging: false } as DataSourceOptions);
  try {
    await dataSource.initialize();
    await dataSource.synchronize(); // your task classes' columns and your own tables
  } catch (err) {
    if (dataSource.isInitialized) await dataSource.destroy();
    await dropDatabase();
    throw err;
  }
  for (const m of dataSource.entityMetadatas) (m.target as { useDataSource?: (d: DataSource) => void }).useDataSource?.(dataSource);
  return {
    dataSource,
    drop: async () => {
      if (dataSource.isInitialized) await dataSource.destroy();
      await dropDatabase();
    },
  };
}

/** A value in an assertion's message, as JSON (a bigint as its digits). */
function shown(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
  } catch {
    return String(value);
  }
}
