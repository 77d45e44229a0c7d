import type { DataSource, EntityMetadata, SaveOptions } from "typeorm";
import { contractOf } from "../dialect";

/**
 * The options `task.save()` passes on to TypeORM. A task with no cascading relation is one
 * INSERT, and on PostgreSQL that INSERT runs autocommitted: one round trip where TypeORM's own
 * transaction made three (START TRANSACTION, INSERT, COMMIT), about 0.7 ms of the 3 to 4 ms from
 * save() to run() on the bench's machine. An INSERT is atomic on its own, and ormq writes nothing
 * else at enqueue (see TaskSubscriber). Options given are kept: `{ transaction: true }` wraps it
 * as before (say, for a subscriber of yours that writes when a task is inserted), and a task with
 * `dependsOn` keeps TypeORM's transaction.
 */
export function taskSaveOptions(dataSource: DataSource, metadata: EntityMetadata, options: SaveOptions | undefined, task?: { dependsOn?: readonly unknown[] }): SaveOptions | undefined {
  if (options?.transaction !== undefined || !contractOf(dataSource).enqueue.autocommitSave) return options;
  // A task with dependencies has its edges written at its transaction's commit: it needs one.
  if (task?.dependsOn && task.dependsOn.length > 0) return options;
  const cascades = metadata.relations.some((r) => r.isCascadeInsert || r.isCascadeUpdate || r.isCascadeSoftRemove || r.isCascadeRecover || r.isCascadeRemove);
  return cascades ? options : { ...options, transaction: false };
}
