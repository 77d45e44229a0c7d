/**
 * What ormq installs into TypeORM, once per process, when a DataSource with ormq's subscriber is
 * built (TypeORM constructs the subscriber while it builds the DataSource's metadata, before any
 * task can be saved): the operations entity methods call (`task.save()`'s options,
 * `task.cancel()`, `task.waitForResult()`; entities import no layer above them), SQLite's
 * 64-bit generated key and the guard on TypeORM's one SQLite connection, and MySQL's answer to a
 * duplicate unique task (dialect/mysql/guardDuplicates.ts). Importing ormq installs nothing.
 */
import { registerTaskOperations } from "../entities/operations";
import { guardSqliteRunnersWhenMade, installSqliteIntegerKey } from "./dialect";
import { answerGuardDuplicates } from "./dialect/mysql/guardDuplicates";
import { taskSaveOptions } from "./tasks/saveOptions";
import { cancelTask } from "./tasks/cancel";
import { waitForResult } from "./tasks/waitForResult";

let installed = false;

export function installOrmq(): void {
  if (installed) return;
  installed = true;
  installSqliteIntegerKey();
  guardSqliteRunnersWhenMade();
  answerGuardDuplicates();
  registerTaskOperations({ cancel: cancelTask, saveOptions: taskSaveOptions, waitForResult });
}
