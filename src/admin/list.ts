/**
 * Read-only views of tasks for people: a filtered list, and one task with its history. They work
 * on any DataSource that has ormq's entities, with or without the task classes (then a task's own
 * columns are shown as stored).
 */
import type { DataSource } from "typeorm";
import { BaseTaskEntity, type TaskStatus } from "../../entities/BaseTaskEntity";
import { TaskEventEntity } from "../../entities/TaskEventEntity";
import { InvalidOptionError } from "../errors";
import { TaskRegistry } from "../registry";
import { hydrate } from "../worker/hydrate";
import { resolveDataSource } from "../worker/options";

/** Every task status, in lifecycle order. */
export const TASK_STATUSES: readonly TaskStatus[] = ["pending", "running", "succeeded", "failed", "cancelled"];

/** One line of `listTasks`. */
export interface TaskListItem {
  id: string;
  type: string;
  queue: string;
  status: TaskStatus;
  priority: number;
  attempts: number;
  maxAttempts: number;
  runAt: Date;
  createdAt: Date;
  finishedAt: Date | null;
  lastError: string | null;
}

export interface ListTasksOptions {
  dataSource?: DataSource;
  status?: TaskStatus;
  type?: string;
  queue?: string;
  /** Most tasks returned, newest first. Default 50. */
  limit?: number;
}

/** Tasks matching the filters, newest first. */
export async function listTasks(options: ListTasksOptions = {}): Promise<TaskListItem[]> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  const limit = options.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1) throw new InvalidOptionError(`limit must be a positive integer, got ${JSON.stringify(options.limit)}`);
  if (options.status !== undefined && !TASK_STATUSES.includes(options.status)) {
    throw new InvalidOptionError(`unknown status ${JSON.stringify(options.status)}: use one of ${TASK_STATUSES.join(", ")}`);
  }
  const query = dataSource
    .getRepository(BaseTaskEntity)
    .createQueryBuilder("t")
    .select(["t.id", "t.type", "t.queue", "t.status", "t.priority", "t.attempts", "t.maxAttempts", "t.runAt", "t.createdAt", "t.finishedAt", "t.lastError"])
    .orderBy("t.id", "DESC")
    .limit(limit);
  if (options.status) query.andWhere("t.status = :status", { status: options.status });
  if (options.type) query.andWhere("t.type = :type", { type: options.type });
  if (options.queue) query.andWhere("t.queue = :queue", { queue: options.queue });
  const tasks = await query.getMany();
  return tasks.map((t) => ({
    id: String(t.id),
    type: t.type,
    queue: t.queue,
    status: t.status,
    priority: t.priority,
    attempts: t.attempts,
    maxAttempts: t.maxAttempts,
    runAt: t.runAt,
    createdAt: t.createdAt,
    finishedAt: t.finishedAt,
    lastError: t.lastError,
  }));
}

/** A task's every column (by property name when its class is known) and its history. */
export interface TaskDetails {
  fields: Record<string, unknown>;
  events: TaskEventEntity[];
}

/** One task by id, with its history (oldest first); null when there is no such task. */
export async function showTask(id: string | number, options: { dataSource?: DataSource } = {}): Promise<TaskDetails | null> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  const taskId = String(id);
  if (!/^\d+$/.test(taskId)) throw new InvalidOptionError(`a task id is a positive integer, got ${JSON.stringify(id)}`);
  const base = dataSource.getMetadata(BaseTaskEntity);
  const raw = await dataSource.createQueryBuilder().select("*").from(base.tablePath, "t").where("t.id = :id", { id: taskId }).getRawOne();
  if (!raw) return null;
  // The row's own class when this DataSource has it; else the base columns, and the rest as stored.
  const metadata = TaskRegistry.for(dataSource).byKey.get(String(raw.type))?.metadata ?? base;
  const entity = hydrate(metadata, dataSource.driver, raw);
  const fields: Record<string, unknown> = {};
  const known = new Set<string>();
  for (const column of metadata.columns) {
    known.add(column.databaseName);
    fields[column.propertyName] = column.getEntityValue(entity);
  }
  for (const [name, value] of Object.entries(raw)) if (!known.has(name) && value !== null) fields[name] = value;
  const events = await dataSource.getRepository(TaskEventEntity).find({ where: { taskId }, order: { id: "ASC" } });
  return { fields, events };
}
