/**
 * The read-only queries behind stats, list and show: TypeORM's query builder, which writes the same
 * statement for both databases. They return rows as stored (driver values): the admin functions
 * convert them, tolerant of whatever a row holds.
 */
import type { DataSource, ObjectLiteral, SelectQueryBuilder } from "typeorm";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import type { TaskStatus } from "../../entities/status";
import { TaskEventEntity } from "../../entities/TaskEventEntity";
import { WorkerEntity } from "../../entities/WorkerEntity";
import { applyTaskFilter, type CheckedTaskFilter } from "./taskFilterSql";
import { readyWhere } from "./lifecycle";
import { contractOf } from "./index";

/** Tasks by queue, type and status. */
export async function countByQueueTypeStatus(ds: DataSource): Promise<{ queue: string; type: string; status: TaskStatus; count: number }[]> {
  const rows: { queue: string; type: string; status: TaskStatus; count: string | number }[] = await ds
    .createQueryBuilder()
    .select("t.queue", "queue")
    .addSelect("t.type", "type")
    .addSelect("t.status", "status")
    .addSelect("COUNT(*)", "count")
    .from(ds.getMetadata(BaseTaskEntity).tablePath, "t")
    .groupBy("t.queue")
    .addGroupBy("t.type")
    .addGroupBy("t.status")
    .orderBy("t.queue")
    .addOrderBy("t.type")
    .addOrderBy("t.status")
    .getRawMany();
  return rows.map((r) => ({ ...r, count: Number(r.count) }));
}

/** The earliest `run_at` among ready tasks (pending, due at `now`), as stored; null if none. */
export async function oldestReadyRunAt(ds: DataSource, now: number, paused: Paused): Promise<unknown> {
  const query = ds.getRepository(BaseTaskEntity).createQueryBuilder("t").select("MIN(t.run_at)", "oldest").where(readyWhere(":now", "t."), { now });
  const row = await excludingPaused(query, paused).getRawOne<{ oldest: unknown }>();
  return row?.oldest ?? null;
}

/** Paused queues and types: their tasks are not ready, as no worker takes them until resumed. */
export interface Paused {
  queues: readonly string[];
  types: readonly string[];
}

function excludingPaused<Q extends SelectQueryBuilder<BaseTaskEntity>>(query: Q, paused: Paused): Q {
  if (paused.queues.length > 0) query.andWhere("t.queue NOT IN (:...pausedQueues)", { pausedQueues: paused.queues });
  if (paused.types.length > 0) query.andWhere("t.type NOT IN (:...pausedTypes)", { pausedTypes: paused.types });
  return query;
}

/** Tasks that finished at or after `since`. */
export async function countFinishedSince(ds: DataSource, since: number): Promise<number> {
  return countOf(ds.getRepository(BaseTaskEntity).createQueryBuilder("t").where("t.finished_at >= :since", { since }));
}

/** Ready tasks per queue, with the earliest `run_at` of each (as stored); none of paused queues or types. */
export async function readyByQueue(ds: DataSource, now: number, paused: Paused): Promise<{ queue: string; ready: number; oldest: unknown }[]> {
  const query = ds
    .getRepository(BaseTaskEntity)
    .createQueryBuilder("t")
    .select("t.queue", "queue")
    .addSelect("COUNT(*)", "ready")
    .addSelect("MIN(t.run_at)", "oldest")
    .where(readyWhere(":now", "t."), { now });
  const rows = await excludingPaused(query, paused).groupBy("t.queue").orderBy("t.queue").getRawMany<{ queue: string; ready: string | number; oldest: unknown }>();
  return rows.map((r) => ({ queue: r.queue, ready: Number(r.ready), oldest: r.oldest }));
}

/** Ready tasks (pending and due) of some types, and queues when given. */
export async function countReadyTasks(ds: DataSource, filter: { types: readonly string[]; queues: readonly string[] | null }, now: number): Promise<number> {
  if (filter.types.length === 0) return 0;
  const query = ds.getRepository(BaseTaskEntity).createQueryBuilder("t").where(readyWhere(":now", "t."), { now }).andWhere("t.type IN (:...types)", { types: filter.types });
  if (filter.queues) query.andWhere("t.queue IN (:...queues)", { queues: filter.queues });
  return countOf(query);
}

/** Pending and running tasks, optionally of some types and queues. */
export async function countUnfinishedTasks(ds: DataSource, filter: { types?: readonly string[]; queues?: readonly string[] | null }): Promise<number> {
  const query = ds.getRepository(BaseTaskEntity).createQueryBuilder("t").where("t.status IN ('pending', 'running')");
  if (filter.types) query.andWhere("t.type IN (:...types)", { types: filter.types });
  if (filter.queues) query.andWhere("t.queue IN (:...queues)", { queues: filter.queues });
  return countOf(query);
}

/** Workers not stopped whose last heartbeat is at or after `since`. */
export async function countLiveWorkers(ds: DataSource, since: number): Promise<number> {
  return countOf(ds.getRepository(WorkerEntity).createQueryBuilder("w").where("w.state <> 'stopped' AND w.last_heartbeat_at >= :since", { since }));
}

/**
 * Tasks newest first, these BaseTaskEntity properties of each (raw values keyed by property);
 * within `ids` (below `below`, at or above `from`, decimal strings) when given: a primary-key range
 * bounds what the statement reads whatever the filters match.
 */
export async function listTaskRows<K extends string>(
  ds: DataSource,
  properties: readonly K[],
  filter: CheckedTaskFilter,
  limit: number,
  ids?: { below: string; from: string },
): Promise<Record<K, unknown>[]> {
  const query = selectProperties(ds.getRepository(BaseTaskEntity).createQueryBuilder("t"), "t", properties);
  query.orderBy("t.id", "DESC").limit(limit);
  if (ids) query.andWhere("t.id < :below AND t.id >= :from", ids);
  applyTaskFilter(query, filter, (name) => ds.driver.escape(name));
  return query.getRawMany<Record<K, unknown>>();
}

/** Worker rows not stopped, or stopped at or after `since`, newest first (raw values by property). */
export async function workerRows(ds: DataSource, since: number): Promise<Record<string, unknown>[]> {
  return ds
    .getRepository(WorkerEntity)
    .createQueryBuilder("w")
    .select(["w.id AS id", "w.name AS name", "w.host AS host", "w.pid AS pid", "w.queues AS queues", "w.state AS state", "w.started_at AS started_at", "w.last_heartbeat_at AS last_heartbeat_at", "w.stopped_at AS stopped_at"])
    .where("w.state <> 'stopped' OR w.stopped_at >= :since", { since })
    .orderBy("w.started_at", "DESC")
    .limit(500)
    .getRawMany();
}

/** Running tasks per worker id. */
export async function runningByWorker(ds: DataSource): Promise<Map<string, number>> {
  const rows = await ds
    .getRepository(BaseTaskEntity)
    .createQueryBuilder("t")
    .select("t.locked_by", "worker")
    .addSelect("COUNT(*)", "n")
    .where("t.status = 'running'")
    .groupBy("t.locked_by")
    .getRawMany<{ worker: string | null; n: string | number }>();
  return new Map(rows.filter((r) => r.worker !== null).map((r) => [String(r.worker), Number(r.n)]));
}

/** The smallest and largest task ids, as decimal strings; null when there are no tasks. */
export async function taskIdRange(ds: DataSource): Promise<{ min: string; max: string } | null> {
  // Two statements: SQLite answers a lone MIN() or MAX() from the index's end, but both in one
  // statement read every row (100 ms a page at a million tasks, measured).
  const one = (fn: "MIN" | "MAX") => ds.getRepository(BaseTaskEntity).createQueryBuilder("t").select(`${fn}(t.id)`, "v").getRawOne<{ v: unknown }>();
  const min = (await one("MIN"))?.v;
  const max = (await one("MAX"))?.v;
  return min !== null && min !== undefined && max !== null && max !== undefined ? { min: String(min), max: String(max) } : null;
}

/** A task's whole row (every column, by column name), or undefined. */
export async function taskRow(ds: DataSource, id: string): Promise<Record<string, unknown> | undefined> {
  return ds.createQueryBuilder().select("*").from(ds.getMetadata(BaseTaskEntity).tablePath, "t").where("t.id = :id", { id }).getRawOne();
}

/** A task's events, oldest first, these properties of each (raw values keyed by property). */
export async function eventRows<K extends string>(ds: DataSource, taskId: string, properties: readonly K[]): Promise<Record<K, unknown>[]> {
  const query = selectProperties(ds.getRepository(TaskEventEntity).createQueryBuilder("e"), "e", properties);
  return query.where("e.taskId = :taskId", { taskId }).orderBy("e.id", "ASC").getRawMany<Record<K, unknown>>();
}

/** Selects these entity properties of `alias`, each under its own name (raw rows keyed by property). */
function selectProperties<Q extends SelectQueryBuilder<ObjectLiteral>>(query: Q, alias: string, properties: readonly string[]): Q {
  properties.forEach((p, i) => (i === 0 ? query.select(`${alias}.${p}`, p) : query.addSelect(`${alias}.${p}`, p)));
  return query;
}

/** The number of rows a query matches (drivers return COUNT as a string or a number). */
async function countOf(query: SelectQueryBuilder<ObjectLiteral>): Promise<number> {
  const row = await query.select("COUNT(*)", "count").getRawOne<{ count: string | number }>();
  return Number(row?.count ?? 0);
}

/** A waited-for task's state, as stored. */
export interface OutcomeRow {
  id: string;
  status: TaskStatus;
  result: unknown;
  last_error: unknown;
  errors: unknown;
  progress: unknown;
  progress_message: unknown;
}

/** The state of the tasks with these ids (those that exist), for waitForResult. */
export async function readOutcomes(ds: DataSource, ids: readonly string[]): Promise<OutcomeRow[]> {
  if (ids.length === 0) return [];
  const rows = await ds
    .getRepository(BaseTaskEntity)
    .createQueryBuilder("t")
    .select(["t.id AS id", "t.status AS status", "t.result AS result", "t.last_error AS last_error", "t.errors AS errors", "t.progress AS progress", "t.progress_message AS progress_message"])
    .where("t.id IN (:...ids)", { ids })
    .getRawMany<OutcomeRow>();
  return rows.map((r) => ({ ...r, id: String(r.id) }));
}

/** Tasks (id, status) holding this unique key, newest first, up to `limit`. */
export async function tasksWithUniqueKey(ds: DataSource, key: string, limit: number): Promise<{ id: string; status: string }[]> {
  const rows = await ds
    .getRepository(BaseTaskEntity)
    .createQueryBuilder("t")
    .select(["t.id AS id", "t.status AS status"])
    .where("t.unique_key = :key", { key })
    .orderBy("t.id", "DESC")
    .limit(limit)
    .getRawMany<{ id: string | number; status: string }>();
  return rows.map((r) => ({ id: String(r.id), status: r.status }));
}

/**
 * Tasks finished per minute since `since` (epoch ms), by minute (epoch ms / 60,000). No index
 * covers finished_at: this reads the table's finished rows in range, which is why the dashboard
 * asks at most once a minute.
 */
export async function finishedPerMinute(ds: DataSource, since: number): Promise<{ minute: number; count: number }[]> {
  const minute = contractOf(ds).sql.intDiv("t.finished_at", "60000");
  const rows = await ds
    .getRepository(BaseTaskEntity)
    .createQueryBuilder("t")
    .select(minute, "minute")
    .addSelect("COUNT(*)", "count")
    .where("t.finished_at >= :since", { since })
    .groupBy(minute)
    .getRawMany<{ minute: unknown; count: unknown }>();
  return rows.map((r) => ({ minute: Math.floor(Number(r.minute)), count: Number(r.count) })).filter((r) => Number.isFinite(r.minute) && Number.isFinite(r.count));
}
