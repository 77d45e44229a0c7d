import type { DataSource, EntityManager, EntityMetadata, ObjectLiteral, QueryRunner } from "typeorm";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { tablesOf } from "../dialect";
import { bulkInsert } from "../dialect/bulkInsert";
import { OrmqError, TaskDefinitionError } from "../errors";
import { noteDependencies, prepareForInsert } from "./subscriber";
import { setKeyColumns, settleDuplicate } from "./uniqueEnqueue";
import { ensureUniqueGuard, standingTasks, uniqueKeysByIds, type StandingTask } from "../dialect/uniqueTasks";
import type { UniqueKeys, UniqueSpec } from "../flow/uniqueSpec";
import { setFairKey } from "../flow/fairnessSpec";
import { announcementOf } from "../client/announcements";
import { resolveDataSource } from "../dataSource";
import { rowWriter } from "./rowValues";
import { ormqFor } from "../client/client";

/** Options of `enqueueMany`. */
export interface EnqueueManyOptions {
  /** The DataSource to write to. Default: the manager's, else the one the task classes are bound to. */
  dataSource?: DataSource;
  /**
   * Write inside this manager's open transaction (`dataSource.transaction(async (manager) => …)`):
   * the tasks commit or roll back with the application's own writes, and are announced at its
   * commit. Without it, enqueueMany joins an ambient transaction (one held in async context, as
   * typeorm-transactional's `@Transactional()` and `runInTransaction` hold it), else runs its own.
   */
  manager?: EntityManager;
}

/**
 * Enqueues many tasks at once with multi-row INSERTs: the fast path for bulk enqueue, tens of
 * thousands of tasks a second where `save([...])` manages a few thousand.
 *
 * It applies what `save()` applies (the class's defaults, `delay()` and `runAt` on the database's
 * clock, field checks and class-validator constraints, the wake-up of workers), all tasks or none: every task is checked before anything is written, and the
 * writes share one transaction. The instances get their `id` and defaults, like after `save()`,
 * and the ids are returned in the order given. TypeORM's own entity listeners and subscribers are
 * not called (no `save()` happens): use `save()` for tasks that rely on them.
 *
 * Tasks may be of different classes; each must be an instance of its task class
 * (`SendEmail.create({...})`), not a plain object, and not saved before.
 */
export async function enqueueMany(tasks: readonly BaseTaskEntity[], options: EnqueueManyOptions = {}): Promise<string[]> {
  if (tasks.length === 0) return [];
  const first = tasks[0] as unknown as { constructor: typeof BaseTaskEntity };
  const dataSource = options.dataSource ?? options.manager?.connection ?? resolveDataSource(first.constructor);
  const client = ormqFor(dataSource);
  const registry = client.registry; // a badly declared task class fails here, with its name
  client.prepare();
  const byClass = new Map<EntityMetadata, number[]>();
  for (let i = 0; i < tasks.length; i++) {
    const metadata = metadataOf(dataSource, tasks[i], i);
    let positions = byClass.get(metadata);
    if (!positions) byClass.set(metadata, (positions = []));
    positions.push(i);
  }
  const write = async (runner: QueryRunner) => {
    const now = await client.clock.now(runner);
    // Everything is checked before the first row is written.
    const keys = new Map<number, UniqueKeys>();
    for (const [metadata, positions] of byClass) {
      const cls = metadata.target as typeof BaseTaskEntity;
      const type = String(metadata.discriminatorValue);
      const known = registry.byKey.get(type);
      const spec = known?.unique ?? null;
      const fairness = known?.fairness ?? null;
      if (spec) await ensureUniqueGuard(client.uniqueGuard, dataSource, runner);
      for (const i of positions) {
        const task = tasks[i] as unknown as ObjectLiteral;
        // The client's enqueue middleware sees each task as save() would show it.
        await prepareForInsert(client.middleware, task, cls, type, now);
        setFairKey(task, fairness);
        const key = setKeyColumns(task, spec, type, cls.name, now);
        if (key) keys.set(i, key);
      }
    }
    const table = tablesOf(dataSource).tasks;
    const announcements = new Set<string>();
    for (const [metadata, positions] of byClass) {
      const type = String(metadata.discriminatorValue);
      const spec = registry.byKey.get(type)?.unique ?? null;
      // Of a unique class, the first task of each key in the batch is written (the others follow
      // its fate below), and the database may skip it when its key stands.
      const firsts = spec ? firstOfEachKey(positions, keys) : positions;
      const writer = rowWriter(dataSource, metadata);
      const rows = firsts.map((i) => writer.values(tasks[i]));
      const returned = await bulkInsert(runner, table, writer.columns.map((c) => c.databaseName), rows, "id", { maySkip: spec !== null });
      checkIncreasing(returned);
      if (spec) {
        await settleMany(runner, tasks, positions, keys, returned.map(String), spec, metadata);
      } else {
        positions.forEach((i, n) => (tasks[i].id = String(returned[n])));
      }
      const tell = client.events.listening("task:enqueued");
      for (const i of positions) {
        if (tasks[i].deduplicated && !tasks[i].replaced) continue;
        announcements.add(announcementOf(tasks[i].queue, type));
        if (tell) client.events.emit("task:enqueued", { taskId: String(tasks[i].id), type, queue: tasks[i].queue });
      }
    }
    // Edges of tasks with dependencies, written when the transaction commits.
    for (const task of tasks) if (task.status === "waiting") noteDependencies(client, runner, task);
    // The wake-up, sent once the transaction commits.
    client.announcements.inserted(runner, announcements);
    return tasks.map((t) => t.id);
  };
  // The caller's transaction: the manager given, else an ambient one (a CLS-held transaction, as
  // typeorm-transactional's, shows as the DataSource's manager), which save() joins the same way.
  const outer = options.manager?.queryRunner ?? dataSource.manager.queryRunner;
  if (outer?.isTransactionActive) return write(outer);
  return dataSource.transaction((manager) => write(manager.queryRunner!));
}

/** The positions that come first for their unique key, in order. */
function firstOfEachKey(positions: readonly number[], keys: ReadonlyMap<number, UniqueKeys>): number[] {
  const seen = new Set<string>();
  return positions.filter((i) => {
    const key = keys.get(i)!.key;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * After a multi-row insert of a unique class: which tasks went in (`inserted`, their ids), and for
 * the others the rule of the class's `onConflict` against the task that stands, as save() applies
 * it. A later task of a key already in the batch follows the first (and replaces it, for replace).
 */
async function settleMany(
  runner: QueryRunner,
  tasks: readonly BaseTaskEntity[],
  positions: readonly number[],
  keys: ReadonlyMap<number, UniqueKeys>,
  inserted: readonly string[],
  spec: UniqueSpec,
  metadata: EntityMetadata,
): Promise<void> {
  const m = runner.manager;
  const insertedByKey = new Map<string, string>();
  for (const [id, key] of await uniqueKeysByIds(m, inserted)) insertedByKey.set(key, id);
  const missing = positions.map((i) => keys.get(i)!).filter((k) => !insertedByKey.has(k.key));
  const standing = new Map<string, StandingTask>();
  for (const t of (await standingTasks(m, missing)).reverse()) standing.set(t.uniqueKey, t); // unfinished holders win
  const done = new Set<string>();
  for (const i of positions) {
    const task = tasks[i] as BaseTaskEntity & ObjectLiteral;
    const key = keys.get(i)!;
    const id = insertedByKey.get(key.key);
    if (id !== undefined && !done.has(key.key)) {
      task.id = id;
      task.deduplicated = false;
      task.replaced = false;
      done.add(key.key);
      continue;
    }
    const holder = id !== undefined ? { id, status: "pending" as const, uniqueKey: key.key } : (standing.get(key.key) ?? null);
    await settleDuplicate(m, task, spec, metadata, key, holder);
  }
}

function metadataOf(dataSource: DataSource, task: unknown, index: number): EntityMetadata {
  const cls = (task as { constructor?: unknown } | null)?.constructor;
  if (!(task instanceof BaseTaskEntity) || cls === BaseTaskEntity || typeof cls !== "function") {
    throw new TaskDefinitionError(`enqueueMany: item ${index} is not an instance of a task class (use SomeTask.create({...}))`);
  }
  if (task.id !== undefined && task.id !== null) {
    throw new TaskDefinitionError(`enqueueMany: item ${index} (${cls.name}) was already saved (id ${task.id})`);
  }
  if (!dataSource.hasMetadata(cls)) {
    throw new TaskDefinitionError(`enqueueMany: ${cls.name} is not among this DataSource's entities`);
  }
  return dataSource.getMetadata(cls);
}

/**
 * Ids are matched to tasks by position. A sequence (or SQLite's rowid) hands out increasing ids
 * within one transaction's statements in row order, so increasing ids confirm the rows came back
 * in the order written; anything else rolls the whole enqueue back rather than mislabel a task.
 */
function checkIncreasing(ids: readonly unknown[]): void {
  for (let i = 1; i < ids.length; i++) {
    if (BigInt(String(ids[i])) <= BigInt(String(ids[i - 1]))) throw new OrmqError("enqueueMany: the database returned ids out of order");
  }
}
