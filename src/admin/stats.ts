import type { DataSource } from "typeorm";
import { BaseTaskEntity, type TaskStatus } from "../../entities/BaseTaskEntity";
import { countByQueueTypeStatus, countFinishedSince, countLiveWorkers, countUnfinishedTasks, finishedPerMinute, oldestReadyRunAt, readyByQueue, runningByWorker, workerRows } from "../dialect/taskReads";
import { TaskRegistry } from "../registry";
import { readControlRows, type ControlRow } from "../dialect/controlsRead";
import { resolveDataSource } from "../dataSource";
import { InvalidOptionError } from "../errors";
import { ageMs, readInstant, readJson, type StoredInstant } from "./storedValues";
import { checkFilterText, checkQueueFilter } from "./taskFilter";
import { ormqFor } from "../client/client";

/** A worker is live when not stopped and it sent a heartbeat within this long. */
const LIVE_WITHIN_MS = 60_000;

/** How many tasks are in one queue, of one type, in one status. */
export interface TaskCount {
  queue: string;
  type: string;
  status: TaskStatus;
  count: number;
}

export interface QueueStats {
  counts: TaskCount[];
  /** How long the oldest task that is ready (pending, due, not in a paused queue or of a paused type) has waited, in ms; null if none. */
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
  /** Queues and types paused or limited at run time (`pauseQueue`, `setQueueLimits`, …). */
  controls: ControlRow[];
  /**
   * What the task classes this DataSource knows declare (`static unique`, `concurrencyLimit`,
   * `rateLimit`), for those that declare any. `by` names database columns.
   */
  classControls: ClassControls[];
}

/** A task class's declared flow control. */
export interface ClassControls {
  type: string;
  unique: { by: string[]; onConflict: string; withinMs: number | null } | null;
  concurrency: { max: number; by: string | null } | null;
  rate: { max: number; perMs: number; by: string | null } | null;
}

/** A class's declared controls in words ("by accountId (skip, within 3600000 ms)", "2 per accountId", "100 per 60000 ms"), for the CLI and the dashboard. */
export function describeClassControls(c: ClassControls): { unique: string | null; concurrency: string | null; rate: string | null } {
  const per = (by: string | null) => (by === null ? "" : ` per ${by}`);
  return {
    unique: c.unique ? `by ${c.unique.by.join(", ")} (${c.unique.onConflict}${c.unique.withinMs === null ? "" : `, within ${c.unique.withinMs} ms`})` : null,
    concurrency: c.concurrency ? `${c.concurrency.max} running${per(c.concurrency.by)}` : null,
    rate: c.rate ? `${c.rate.max} per ${c.rate.perMs} ms${per(c.rate.by)}` : null,
  };
}

/** The declared flow control of every class of a registry that has any, by type. */
function classControlsOf(registry: TaskRegistry): ClassControls[] {
  const out: ClassControls[] = [];
  for (const t of registry.byKey.values()) {
    if (!t.unique && !t.concurrency && !t.rate) continue;
    out.push({
      type: t.key,
      unique: t.unique ? { by: t.unique.by.map((b) => b.column), onConflict: t.unique.onConflict, withinMs: t.unique.withinMs } : null,
      concurrency: t.concurrency ? { max: t.concurrency.max, by: t.concurrency.column } : null,
      rate: t.rate ? { max: t.rate.max, perMs: t.rate.perMs, by: t.rate.column } : null,
    });
  }
  return out.sort((a, b) => a.type.localeCompare(b.type));
}

/**
 * Counts tasks by queue, type and status; the age of the oldest ready task; tasks finished in the
 * last minute; live workers; and tasks no worker here can run.
 */
export async function getStats(options: { dataSource?: DataSource } = {}): Promise<QueueStats> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  const registry = ormqFor(dataSource).registry;
  const counts = await countByQueueTypeStatus(dataSource);
  const now = await ormqFor(dataSource).clock.now();
  const controls = await readControlRows(dataSource.manager);
  const oldest = await oldestReadyRunAt(dataSource, now, pausedNames(controls));
  const finished = await countFinishedSince(dataSource, now - 60_000);
  const liveWorkers = await countLiveWorkers(dataSource, now - LIVE_WITHIN_MS);
  const unknown = new Map<string, number>();
  for (const c of counts) {
    if (!registry.byKey.has(c.type)) unknown.set(c.type, (unknown.get(c.type) ?? 0) + c.count);
  }
  return {
    counts,
    // Tolerant of any stored value (a REAL run_at in SQLite): never NaN, null when unknown.
    oldestReadyAgeMs: ageMs(now, oldest),
    finishedLastMinute: finished,
    liveWorkers,
    unknownTypes: [...unknown].map(([type, count]) => ({ type, count })),
    controls,
    classControls: classControlsOf(registry),
  };
}

/** The paused queues and types among the controls. */
function pausedNames(controls: readonly ControlRow[]): { queues: string[]; types: string[] } {
  const paused = (scope: ControlRow["scope"]) => controls.filter((c) => c.scope === scope && c.paused).map((c) => c.name);
  return { queues: paused("queue"), types: paused("type") };
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
export async function getReadiness(options: { dataSource?: DataSource } = {}): Promise<{ queues: QueueReadiness[]; liveWorkers: number; pausedQueues: string[]; pausedTypes: string[] }> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  const now = await ormqFor(dataSource).clock.now();
  const paused = pausedNames(await readControlRows(dataSource.manager));
  const rows = await readyByQueue(dataSource, now, paused);
  const liveWorkers = await countLiveWorkers(dataSource, now - LIVE_WITHIN_MS);
  return {
    queues: rows.map((r) => ({ queue: r.queue, ready: Number(r.ready), oldestReadyAgeMs: ageMs(now, r.oldest) ?? 0 })),
    liveWorkers,
    pausedQueues: paused.queues,
    pausedTypes: paused.types,
  };
}

/**
 * Tasks not finished yet (pending, due or not, and running) of some types and queues: what a
 * drain still has ahead of it.
 */
export async function countUnfinished(options: { dataSource?: DataSource; types?: string[]; queues?: string[] | null } = {}): Promise<number> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  const types = options.types?.map((t) => checkFilterText(t, "countUnfinished: types"));
  const queues = options.queues?.map((q) => checkQueueFilter(q, "countUnfinished: queues"));
  return countUnfinishedTasks(dataSource, { types, queues });
}

/** A worker as `listWorkers` returns it. */
export interface WorkerInfoRow {
  id: string;
  name: string;
  host: string;
  pid: number;
  queues: string[] | null;
  state: string;
  startedAt: StoredInstant;
  lastHeartbeatAt: StoredInstant;
  stoppedAt: StoredInstant | null;
  /** Tasks it holds running now. */
  running: number;
}

/** Workers not stopped, and those stopped in the last hour, newest first (at most 500), with the tasks each holds. */
export async function listWorkers(options: { dataSource?: DataSource } = {}): Promise<WorkerInfoRow[]> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  const now = await ormqFor(dataSource).clock.now();
  const rows = await workerRows(dataSource, now - 3_600_000);
  const running = await runningByWorker(dataSource);
  return rows.map((r) => {
    const queues = readJson(r.queues);
    return {
      id: String(r.id),
      name: String(r.name),
      host: String(r.host),
      pid: Number(r.pid),
      queues: Array.isArray(queues) ? queues.map(String) : null,
      state: String(r.state),
      startedAt: readInstant(r.started_at) as StoredInstant,
      lastHeartbeatAt: readInstant(r.last_heartbeat_at) as StoredInstant,
      stoppedAt: readInstant(r.stopped_at),
      running: running.get(String(r.id)) ?? 0,
    };
  });
}

/**
 * Tasks finished (any way) in each of the last `minutes` minutes (1 to 1,440), oldest first, by the
 * database's clock; minutes with none are 0. It reads every task finished in that span (no index
 * covers finish times): ask it once a minute, not once a second.
 */
export async function countFinishedByMinute(options: { dataSource?: DataSource; minutes?: number } = {}): Promise<{ minute: Date; count: number }[]> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  const minutes = options.minutes ?? 60;
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > 1_440) throw new InvalidOptionError(`countFinishedByMinute: minutes must be an integer from 1 to 1440, got ${JSON.stringify(minutes)}`);
  const now = await ormqFor(dataSource).clock.now();
  const last = Math.floor(now / 60_000);
  const counts = new Map((await finishedPerMinute(dataSource, (last - minutes + 1) * 60_000)).map((r) => [r.minute, r.count]));
  return Array.from({ length: minutes }, (_, i) => {
    const minute = last - minutes + 1 + i;
    return { minute: new Date(minute * 60_000), count: counts.get(minute) ?? 0 };
  });
}
