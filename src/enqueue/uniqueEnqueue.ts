/**
 * Unique tasks at enqueue (`static unique`): the key columns written with the task, and after the
 * insert, what happened. The database decides: its guard trigger skips the insert of a task whose
 * key stands (see dialect/postgres/uniqueGuard.ts), so a duplicate never raises and never aborts
 * the caller's transaction; this module then tells the instance which task stands
 * (`task.id`, `task.deduplicated`), replaces a pending one's data (`replace`), or throws
 * `UniqueTaskError` (`error`; nothing was written).
 */
import type { EntityManager, EntityMetadata, ObjectLiteral } from "typeorm";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { ensureUniqueGuard, insertSkipped, replacePending, standingTasks, type StandingTask } from "../dialect/uniqueTasks";
import { UniqueTaskError } from "../errors";
import { ormqFor } from "../client/client";
import { uniqueKeysOf, type UniqueKeys, type UniqueSpec } from "../flow/uniqueSpec";

/** A task's key columns, kept on the instance between its before- and after-insert. */
const KEYS: unique symbol = Symbol("ormq.uniqueKeys");
type UniqueTask = ObjectLiteral & { [KEYS]?: UniqueKeys };

/** What an enqueue of a unique task did. */
export type UniqueOutcome = "inserted" | "skipped" | "replaced";

/**
 * Sets the task's key columns before its insert (null for a class without `unique`, whatever the
 * instance held). Refuses a key column that is null.
 */
export async function markUnique(m: EntityManager, task: UniqueTask, spec: UniqueSpec | null, type: string, className: string, now: number): Promise<void> {
  const keys = setKeyColumns(task, spec, type, className, now);
  if (!keys) return;
  await ensureUniqueGuard(ormqFor(m.connection).uniqueGuard, m.connection, m.queryRunner);
  task[KEYS] = keys;
}

/**
 * Writes a task's key columns (null, whatever the instance held, for a class without `unique`)
 * and returns its keys. For save() (markUnique) and enqueueMany alike.
 */
export function setKeyColumns(task: ObjectLiteral, spec: UniqueSpec | null, type: string, className: string, now: number): UniqueKeys | null {
  const keys = spec ? uniqueKeysOf(spec, type, task, className, now) : null;
  task.uniqueKey = keys?.key ?? null;
  task.uniqueWindow = keys?.window ?? null;
  return keys;
}

/**
 * After the insert of a unique task: whether it went in, and if not, the standing task's id on
 * the instance, a replace, or the error. Returns what happened ("inserted" for other classes).
 */
export async function settleUnique(m: EntityManager, task: UniqueTask, spec: UniqueSpec | null, metadata: EntityMetadata): Promise<UniqueOutcome> {
  const keys = task[KEYS];
  if (!spec || !keys) return "inserted";
  delete task[KEYS];
  const skipped = (await insertSkipped(m.queryRunner!)) ?? (task.id === undefined || task.id === null);
  if (!skipped) {
    task.deduplicated = false;
    task.replaced = false;
    return "inserted";
  }
  return settleDuplicate(m, task, spec, metadata, keys, (await standingTasks(m, [keys]))[0] ?? null);
}

/** A task whose insert the guard skipped: the rule of its class's `onConflict`. */
export async function settleDuplicate(
  m: EntityManager,
  task: ObjectLiteral,
  spec: UniqueSpec,
  metadata: EntityMetadata,
  keys: UniqueKeys,
  standing: StandingTask | null,
): Promise<Exclude<UniqueOutcome, "inserted">> {
  const type = String(metadata.discriminatorValue);
  if (spec.onConflict === "error") throw new UniqueTaskError(type, keys.values, standing?.id ?? null);
  // The holder can have finished (and been deleted) in the instant since the guard saw it: the
  // duplicate is still not written, and its id is left unset.
  task.id = standing?.id;
  task.deduplicated = true;
  task.replaced = false;
  if (standing) task.status = standing.status;
  if (spec.onConflict === "replace" && standing?.status === "pending" && standing.uniqueKey === keys.key) {
    if (await replacePending(m, metadata.target as typeof BaseTaskEntity, standing.id, keys.key, replacedValues(task, metadata))) {
      task.replaced = true;
      return "replaced";
    }
  }
  return "skipped";
}

/** What a replace writes: the class's own columns and the due time. */
function replacedValues(task: ObjectLiteral, metadata: EntityMetadata): ObjectLiteral {
  const values: ObjectLiteral = { runAt: task.runAt, updatedAt: task.updatedAt };
  for (const column of metadata.columns) {
    if (column.target === BaseTaskEntity || column.isDiscriminator || column.isGenerated || column.relationMetadata) continue;
    const value = column.getEntityValue(task);
    if (value !== undefined) values[column.propertyName] = value;
  }
  return values;
}
