import type { DataSource } from "typeorm";
import { BaseTaskEntity, type TaskStatus } from "../../entities/BaseTaskEntity";
import { WorkerEntity } from "../../entities/WorkerEntity";
import { databaseNow } from "../clock";
import { TaskRegistry } from "../registry";
import { resolveDataSource } from "../dataSource";
import { ageMs } from "./storedValues";

/** How many tasks are in one queue, of one type, in one status. */
export interface TaskCount {
  queue: string;
  type: string;
  status: TaskStatus;
  count: number;
}

export interface QueueStats {
  counts: TaskCount[];
  /** How long the oldest task that is ready (pending and due) has waited, in ms; null if none. */
  oldestReadyAgeMs: number | null;
  /** Tasks that finished (any way) in the last minute. */
  finishedLastMinute: number;
  /** Workers that heartbeat within the last minute and have not stopped. */
  liveWorkers: number;
  /**
   * Tasks whose type has no runnable class in this DataSource. Workers leave them alone; they
   * wait here until a class for the type is deployed, or someone removes them.
   */
  unknownTypes: { type: string; count: number }[];
}

/**
 * Counts tasks by queue, type and status; the age of the oldest ready task; tasks finished in the
 * last minute; live workers; and tasks no worker here can run.
 */
export async function getStats(options: { dataSource?: DataSource } = {}): Promise<QueueStats> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  const registry = TaskRegistry.for(dataSource);
  const rows: { queue: string; type: string; status: TaskStatus; count: string | number }[] = await dataSource
    .createQueryBuilder()
    .select("t.queue", "queue")
    .addSelect("t.type", "type")
    .addSelect("t.status", "status")
    .addSelect("COUNT(*)", "count")
    .from(dataSource.getMetadata(BaseTaskEntity).tablePath, "t")
    .groupBy("t.queue")
    .addGroupBy("t.type")
    .addGroupBy("t.status")
    .orderBy("t.queue")
    .addOrderBy("t.type")
    .addOrderBy("t.status")
    .getRawMany();
  const counts = rows.map((r) => ({ ...r, count: Number(r.count) }));
  const now = await databaseNow(dataSource);
  const tasks = dataSource.getRepository(BaseTaskEntity);
  const oldest = await tasks
    .createQueryBuilder("t")
    .select("MIN(t.run_at)", "oldest")
    .where("t.status = 'pending' AND t.run_at <= :now", { now })
    .getRawOne<{ oldest: string | number | null }>();
  const finished = await tasks
    .createQueryBuilder("t")
    .select("COUNT(*)", "count")
    .where("t.finished_at >= :since", { since: now - 60_000 })
    .getRawOne<{ count: string | number }>();
  const liveWorkers = await countLiveWorkers(dataSource, now);
  const unknown = new Map<string, number>();
  for (const c of counts) {
    if (!registry.byKey.has(c.type)) unknown.set(c.type, (unknown.get(c.type) ?? 0) + c.count);
  }
  return {
    counts,
    // Tolerant of any stored value (a REAL run_at in SQLite): never NaN, null when unknown.
    oldestReadyAgeMs: ageMs(now, oldest?.oldest),
    finishedLastMinute: Number(finished?.count ?? 0),
    liveWorkers,
    unknownTypes: [...unknown].map(([type, count]) => ({ type, count })),
  };
}

/** Ready tasks (pending and due) in one queue. */
export interface QueueReadiness {
  queue: string;
  ready: number;
  /** How long its oldest ready task has waited, in ms. */
  oldestReadyAgeMs: number;
}

/**
 * The cheap part of `getStats`, for frequent scrapes: ready tasks and the oldest one's age per
 * queue (read through the claim index), and live workers.
 */
export async function getReadiness(options: { dataSource?: DataSource } = {}): Promise<{ queues: QueueReadiness[]; liveWorkers: number }> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  const now = await databaseNow(dataSource);
  const rows = await dataSource
    .getRepository(BaseTaskEntity)
    .createQueryBuilder("t")
    .select("t.queue", "queue")
    .addSelect("COUNT(*)", "ready")
    .addSelect("MIN(t.run_at)", "oldest")
    .where("t.status = 'pending' AND t.run_at <= :now", { now })
    .groupBy("t.queue")
    .orderBy("t.queue")
    .getRawMany<{ queue: string; ready: string | number; oldest: string | number }>();
  const liveWorkers = await countLiveWorkers(dataSource, now);
  return {
    queues: rows.map((r) => ({ queue: r.queue, ready: Number(r.ready), oldestReadyAgeMs: ageMs(now, r.oldest) ?? 0 })),
    liveWorkers,
  };
}

/**
 * Tasks not finished yet (pending, due or not, and running) of some types and queues: what a
 * drain still has ahead of it.
 */
export async function countUnfinished(options: { dataSource?: DataSource; types?: string[]; queues?: string[] | null } = {}): Promise<number> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  const query = dataSource
    .getRepository(BaseTaskEntity)
    .createQueryBuilder("t")
    .select("COUNT(*)", "count")
    .where("t.status IN ('pending', 'running')");
  if (options.types) query.andWhere("t.type IN (:...types)", { types: options.types });
  if (options.queues) query.andWhere("t.queue IN (:...queues)", { queues: options.queues });
  const row = await query.getRawOne<{ count: string | number }>();
  return Number(row?.count ?? 0);
}

/** Workers that have not stopped and sent a heartbeat within the last minute (by the database's clock `now`). */
async function countLiveWorkers(dataSource: DataSource, now: number): Promise<number> {
  const live = await dataSource
    .getRepository(WorkerEntity)
    .createQueryBuilder("w")
    .select("COUNT(*)", "count")
    .where("w.state <> 'stopped' AND w.last_heartbeat_at >= :since", { since: now - 60_000 })
    .getRawOne<{ count: string | number }>();
  return Number(live?.count ?? 0);
}
