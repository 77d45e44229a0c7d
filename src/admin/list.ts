/**
 * Read-only views of tasks for people: a filtered list, and one task with its history. They work
 * on any DataSource that has ormq's entities, with or without the task classes (then a task's own
 * columns are shown as stored).
 *
 * They read raw rows and convert each value tolerantly (see storedValues.ts), not through entity
 * hydration: a row that hydration cannot load (JSON that does not parse, an instant out of a
 * Date's range) is exactly the row someone needs to look at.
 */
import type { DataSource, Driver } from "typeorm";
import type { ColumnMetadata } from "typeorm/metadata/ColumnMetadata";
import { BaseTaskEntity, type TaskStatus } from "../../entities/BaseTaskEntity";
import { TASK_STATUSES } from "../../entities/status";
import type { TaskEventKind } from "../../entities/TaskEventEntity";
import { baseColumnKind } from "../baseColumns";
import { eventRows, listTaskRows, taskIdRange, taskRow } from "../dialect/taskReads";
import { InvalidOptionError } from "../errors";
import { checkTaskId } from "../validation";
import { resolveDataSource } from "../dataSource";
import { readInstant, readJson, readText, type StoredInstant } from "./storedValues";
import { checkTaskFilter, type TaskFilter } from "./taskFilter";
import type { CheckedTaskFilter } from "../dialect/taskFilterSql";
import { ormqFor } from "../client/client";
import { workflowOf, type WorkflowView } from "./workflow";

export type { StoredInstant } from "./storedValues";

export { TASK_STATUSES } from "../../entities/status";

/** The most tasks one `listTasks` call returns. */
export const MAX_LIST_LIMIT = 10_000;

/**
 * One line of `listTasks`. The instants are `Date`s, except in a row whose stored value makes no
 * valid Date: then the value as stored (see `StoredInstant`). The other fields are as stored.
 */
export interface TaskListItem {
  id: string;
  type: string;
  queue: string;
  status: TaskStatus;
  priority: number;
  attempts: number;
  maxAttempts: number;
  runAt: StoredInstant;
  createdAt: StoredInstant;
  finishedAt: StoredInstant | null;
  lastError: string | null;
  /** The last progress its run reported (0..1), and its message; null when none. */
  progress: number | null;
  progressMessage: string | null;
}

export interface ListTasksOptions extends Omit<TaskFilter, "status"> {
  dataSource?: DataSource;
  status?: TaskStatus;
  /** Most tasks returned, newest first: 1 to MAX_LIST_LIMIT (10,000). Default 50. */
  limit?: number;
}

/** The columns a list line shows, by property name. */
const LIST_COLUMNS = ["id", "type", "queue", "status", "priority", "attempts", "maxAttempts", "runAt", "createdAt", "finishedAt", "lastError", "progress", "progressMessage"] as const;

/** Tasks matching the filters, newest first (one statement, however many rows it must read). */
export async function listTasks(options: ListTasksOptions = {}): Promise<TaskListItem[]> {
  const { dataSource, limit } = checkList(options);
  const rows = await listTaskRows(dataSource, LIST_COLUMNS, filterOf(dataSource, options), limit);
  return rows.map(listItem);
}

/** Task ids one page reads at most, whatever the filters: the bound on a page's cost. */
export const LIST_PAGE_SCAN = 50_000;

/** One page of `listTaskPage`. */
export interface TaskPage {
  tasks: TaskListItem[];
  /** Pass as `before` for the next page; null when no older task is left to look at. */
  next: string | null;
}

/**
 * A page of tasks matching the filters, newest first, by keyset (task ids below `before`), never
 * OFFSET. Each page reads at most LIST_PAGE_SCAN ids, so a filter that matches few tasks in a
 * million answers in bounded time: such a page may hold fewer than `limit` tasks (even none) and
 * still return a cursor. Filters on the primary key range are index scans on both databases.
 */
export async function listTaskPage(options: ListTasksOptions & { before?: string | number } = {}): Promise<TaskPage> {
  const { dataSource, limit } = checkList(options);
  const cursor = options.before === undefined ? undefined : BigInt(checkTaskId(options.before, "listTaskPage(before)"));
  // Checked first: a bad filter is the caller's mistake whether or not any task is there to match.
  const filter = filterOf(dataSource, options);
  const range = await taskIdRange(dataSource);
  if (!range) return { tasks: [], next: null };
  const below = cursor ?? BigInt(range.max) + 1n;
  const min = BigInt(range.min);
  if (below <= min) return { tasks: [], next: null };
  const from = below - BigInt(LIST_PAGE_SCAN) > min ? below - BigInt(LIST_PAGE_SCAN) : min;
  const rows = await listTaskRows(dataSource, LIST_COLUMNS, filter, limit, {
    below: below.toString(),
    from: from.toString(),
  });
  const tasks = rows.map(listItem);
  const next = tasks.length === limit ? tasks[tasks.length - 1].id : from > min ? from.toString() : null;
  return { tasks, next };
}

/** The filter of a list call, checked (see TaskFilter). */
function filterOf(dataSource: DataSource, options: ListTasksOptions): CheckedTaskFilter {
  const { id, status, type, queue, createdFrom, createdBefore, fields } = options;
  return checkTaskFilter(dataSource, { id, status, type, queue, createdFrom, createdBefore, fields }, "listTasks");
}

function checkList(options: ListTasksOptions): { dataSource: DataSource; limit: number } {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  const limit = options.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new InvalidOptionError(`limit must be an integer from 1 to ${MAX_LIST_LIMIT}, got ${JSON.stringify(options.limit)}`);
  }
  if (options.status !== undefined && !TASK_STATUSES.includes(options.status)) {
    throw new InvalidOptionError(`unknown status ${JSON.stringify(options.status)}: use one of ${TASK_STATUSES.join(", ")}`);
  }
  return { dataSource, limit };
}

function listItem(r: Record<(typeof LIST_COLUMNS)[number], unknown>): TaskListItem {
  return {
    id: String(r.id),
    type: r.type as string,
    queue: r.queue as string,
    status: r.status as TaskStatus,
    priority: r.priority as number,
    attempts: r.attempts as number,
    maxAttempts: r.maxAttempts as number,
    // Not null in the schema; a row written around it shows as stored all the same.
    runAt: readInstant(r.runAt) as StoredInstant,
    createdAt: readInstant(r.createdAt) as StoredInstant,
    finishedAt: readInstant(r.finishedAt),
    lastError: readText(r.lastError),
    progress: r.progress === null || r.progress === undefined || !Number.isFinite(Number(r.progress)) ? null : Number(r.progress),
    progressMessage: readText(r.progressMessage),
  };
}

/** One event of a task's history, as `showTask` returns it (`at` as in `TaskListItem`). */
export interface TaskEventItem {
  /**
   * The event row's id; null for "enqueued", read from the task's own row, and for "started", read
   * from the row of the attempt's outcome or, for the attempt running now, from the task's row.
   */
  id: string | null;
  taskId: string;
  kind: TaskEventKind;
  at: StoredInstant;
  worker: string | null;
  attempt: number | null;
  error: string | null;
}

/**
 * A task's every column (by property name when its class is known) and its history. A value that
 * cannot be loaded as its column says is shown as stored: an instant out of a Date's range as its
 * number, JSON that does not parse as its text.
 */
export interface TaskDetails {
  fields: Record<string, unknown>;
  events: TaskEventItem[];
  /** Its parent, children, dependencies and dependents, and what stands below it; absent for a task in no workflow. */
  workflow?: WorkflowView;
}

/** One task by id, with its history (oldest first); null when there is no such task. */
export async function showTask(id: string | number, options: { dataSource?: DataSource } = {}): Promise<TaskDetails | null> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  const taskId = checkTaskId(id, "showTask(id)");
  const base = dataSource.getMetadata(BaseTaskEntity);
  const raw = await taskRow(dataSource, taskId);
  if (!raw) return null;
  // The row's own class when this DataSource has it; else the base columns, and the rest as stored.
  const metadata = ormqFor(dataSource).registry.byKey.get(String(raw.type))?.metadata ?? base;
  const fields: Record<string, unknown> = {};
  const known = new Set<string>();
  for (const column of metadata.columns) {
    if (column.isVirtual) continue;
    known.add(column.databaseName);
    const value = raw[column.databaseName];
    if (value !== undefined) fields[column.propertyName] = readColumn(column, dataSource.driver, value);
  }
  for (const [name, value] of Object.entries(raw)) if (!known.has(name) && value !== null) fields[name] = value;
  // A task's enqueue is its row's creation: no event row is written for it (see TaskSubscriber).
  const enqueued: TaskEventItem = {
    id: null,
    taskId,
    kind: "enqueued",
    at: readInstant(raw.created_at) as StoredInstant,
    worker: null,
    attempt: 0,
    error: null,
  };
  // A class with history off records no events, and shows no start of the attempt running now.
  const recordsHistory = ormqFor(dataSource).registry.recordsHistory(String(raw.type));
  const events = [enqueued, ...(await readEvents(dataSource, taskId, recordsHistory ? raw : null))];
  const workflow = await workflowOf(dataSource.manager, taskId, raw.parent_id === null || raw.parent_id === undefined ? null : String(raw.parent_id));
  return workflow ? { fields, events, workflow } : { fields, events };
}

/**
 * One stored value as the entity would hold it, or as stored when it cannot be loaded. ormq's own
 * columns are converted here (as baseColumns.ts's READ does, but tolerantly); a task class's own
 * columns through TypeORM (driver conversion and transformer), as find() loads them.
 */
function readColumn(column: ColumnMetadata, driver: Driver, raw: unknown): unknown {
  switch (baseColumnKind(column)) {
    case "instant":
      return readInstant(raw);
    case "json":
      return readJson(raw);
    case "id":
      return raw === null ? null : String(raw);
    case "same":
      return raw;
  }
  // A relation's join column: its stored key.
  if (column.relationMetadata) return raw;
  try {
    const value = driver.prepareHydratedValue(raw, column);
    return value instanceof Date && Number.isNaN(value.getTime()) ? raw : value;
  } catch {
    return raw;
  }
}

/**
 * A task's history, oldest first, read as stored (see readColumn). An attempt's start has no row of
 * its own (see TaskEventEntity): it is listed from its outcome's `started_at`, just before that
 * outcome, and for the attempt running now from the task's row (`running`, when its class records
 * history).
 */
async function readEvents(dataSource: DataSource, taskId: string, running: Record<string, unknown> | null): Promise<TaskEventItem[]> {
  const rows = await eventRows(dataSource, taskId, ["id", "taskId", "kind", "at", "worker", "attempt", "error", "startedAt"] as const);
  // Rows of kind "enqueued" and "started" were written by earlier versions of ormq. A "started" row
  // stands for the start of the next outcome of its attempt (attempt numbers repeat after a
  // hand-back), which then gets no second one.
  const stored = rows.filter((e) => e.kind !== "enqueued");
  let openStart: number | null = null;
  const started = (at: unknown, worker: unknown, attempt: number | null): TaskEventItem => ({
    id: null,
    taskId,
    kind: "started",
    at: readInstant(at) as StoredInstant,
    worker: readText(worker),
    attempt,
    error: null,
  });
  const events: TaskEventItem[] = [];
  for (const e of stored) {
    const attempt = e.attempt as number | null;
    if (e.kind === "started") openStart = Number(attempt);
    else if (openStart !== null && openStart === Number(attempt)) openStart = null; // this outcome's start is that row
    else if (e.startedAt !== null && e.startedAt !== undefined) {
      // A rescued attempt's worker is the one lost (named in the error), not the rescuer.
      events.push(started(e.startedAt, e.kind === "rescued" ? null : e.worker, attempt));
    }
    events.push({
      id: String(e.id),
      taskId,
      kind: e.kind as TaskEventKind,
      at: readInstant(e.at) as StoredInstant,
      worker: readText(e.worker),
      attempt,
      error: readText(e.error),
    });
  }
  if (running && running.status === "running" && running.started_at !== null && running.started_at !== undefined && openStart !== Number(running.attempts)) {
    events.push(started(running.started_at, running.locked_by, Number(running.attempts)));
  }
  return events;
}
