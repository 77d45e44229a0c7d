/**
 * Deletes finished tasks by filter (`deleteTasks`, `ormq delete`, the dashboard's delete): the same
 * guarded DELETE as prune (status still finished), page by page, with their history. Unfinished
 * tasks are never deleted here: cancel them first.
 */
import type { DataSource } from "typeorm";
import { BaseTaskEntity, FINISHED_STATUSES, type TaskStatus } from "../../entities/BaseTaskEntity";
import { filteredIds } from "../dialect/taskWrites";
import { resolveDataSource } from "../dataSource";
import { InvalidOptionError } from "../errors";
import { deleteInBatches } from "../maintenance/prune";
import { checkTaskFilter, type TaskFilter } from "./taskFilter";

/** What deleteTasks did. */
export interface DeleteTasksResult {
  deleted: number;
  /** Tasks your own rows still reference (a foreign key), with the database's reason: kept. */
  blocked: { id: string; error: string }[];
}

const BATCH = 500;

/**
 * Deletes the finished tasks (succeeded, failed, cancelled; or the statuses given, all finished)
 * that the filter matches, and their history. `deleteTasks({ status: "failed", type: "send_email" })`.
 */
export async function deleteTasks(options: TaskFilter & { dataSource?: DataSource }): Promise<DeleteTasksResult> {
  const { dataSource: given, ...filter } = options ?? {};
  const dataSource = resolveDataSource(BaseTaskEntity, given);
  const statuses: TaskStatus[] = filter.status === undefined ? [...FINISHED_STATUSES] : Array.isArray(filter.status) ? [...(filter.status as TaskStatus[])] : [filter.status as TaskStatus];
  for (const s of statuses) {
    if (!FINISHED_STATUSES.includes(s)) throw new InvalidOptionError(`deleteTasks: only finished tasks are deleted (succeeded, failed, cancelled), got ${JSON.stringify(s)}; cancel a task first`);
  }
  const checked = checkTaskFilter(dataSource, { ...filter, status: statuses }, "deleteTasks");
  return deleteInBatches(dataSource, (after) => filteredIds(dataSource.manager, checked, after, BATCH), statuses, Number.MAX_SAFE_INTEGER);
}
