/**
 * Schedules at run time, stored in the database: made, paused, resumed and deleted here (and by
 * `ormq schedules`), enqueued by every worker's scheduler within MAX_SLEEP_MS of a change. Class
 * schedules (`static schedule`) are listed, paused and resumed the same way; they are written by
 * the workers that start with their class, so deleting one lasts until the next such start.
 */
import type { DataSource } from "typeorm";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import type { ScheduleSource } from "../../entities/ScheduleEntity";
import { deleteScheduleRows, readSchedules, setSchedulePaused } from "../dialect/scheduleStatements";
import { resolveDataSource } from "../dataSource";
import { InvalidOptionError } from "../errors";
import { type TaskClass } from "../registry";
import { putSchedule, scheduleDefinition } from "../schedule/definitions";
import { cronOf, nextTick, scheduleSpecOf, type CatchUp } from "../schedule/scheduleSpec";
import { checkFilterText } from "./taskFilter";
import { ormqFor } from "../client/client";

/** What `createSchedule` takes. */
export interface CreateScheduleOptions {
  /** 1 to 255 characters; a class schedule's name is its type key. */
  name: string;
  /** The task class, or its type key (`@ChildEntity("nightly_report")`) among the DataSource's entities. */
  type: TaskClass | string;
  /** 5 fields, or 6 with seconds first. */
  cron: string;
  /** An IANA time zone. Default UTC. */
  timezone?: string;
  /** Default "skip". See docs/scheduling.md. */
  catchUp?: CatchUp;
  /** Values of the class's own columns (and queue, priority, maxAttempts, timeoutMs) for each task. */
  data?: Record<string, unknown>;
  dataSource?: DataSource;
}

/** A schedule as listed. */
export interface ScheduleInfo {
  name: string;
  type: string;
  cron: string;
  timezone: string | null;
  catchUp: string;
  source: ScheduleSource;
  paused: boolean;
  /** The last tick enqueued (or skipped), or null before the first. */
  lastTick: Date | null;
  /** The next tick, or null when there is none (or the definition cannot be read). */
  nextRun: Date | null;
}

/**
 * Makes a schedule, or replaces the definition of the run-time schedule of that name (its last
 * tick stays). Refuses a name a class schedule holds. The workers' schedulers pick it up within
 * a couple of seconds; its first tick is the first after now.
 */
export async function createSchedule(options: CreateScheduleOptions): Promise<ScheduleInfo> {
  if (options === null || typeof options !== "object") throw new InvalidOptionError("createSchedule: expected { name, type, cron, … }");
  const name = checkName(options.name, "createSchedule: name");
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  const registry = ormqFor(dataSource).registry;
  const key = typeof options.type === "string" ? options.type : dataSource.hasMetadata(options.type) ? String(dataSource.getMetadata(options.type).discriminatorValue) : undefined;
  const type = key === undefined ? undefined : registry.byKey.get(key);
  if (!type) {
    const shown = typeof options.type === "function" ? options.type.name : JSON.stringify(options.type);
    throw new InvalidOptionError(`createSchedule: type ${shown} is not a task class among this DataSource's entities`);
  }
  const spec = scheduleSpecOf({ cron: options.cron, timezone: options.timezone, catchUp: options.catchUp }, "createSchedule", (m) => new InvalidOptionError(m));
  const definition = await scheduleDefinition(dataSource, name, type, spec, options.data, "api", "createSchedule");
  if (!(await putSchedule(dataSource, definition))) {
    throw new InvalidOptionError(`createSchedule: "${name}" is the name of a task class's own schedule (static schedule); choose another name`);
  }
  return (await listSchedules({ dataSource, name }))[0];
}

/** Stops a schedule's ticks (within a couple of seconds). False when there is no such schedule. */
export async function pauseSchedule(name: string, options: { dataSource?: DataSource } = {}): Promise<boolean> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  return setSchedulePaused(dataSource.manager, checkName(name, "pauseSchedule(name)"), true, await ormqFor(dataSource).clock.now());
}

/** Starts a paused schedule again; the ticks missed meanwhile follow its `catchUp`. False when there is no such schedule. */
export async function resumeSchedule(name: string, options: { dataSource?: DataSource } = {}): Promise<boolean> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  return setSchedulePaused(dataSource.manager, checkName(name, "resumeSchedule(name)"), false, await ormqFor(dataSource).clock.now());
}

/**
 * Deletes a schedule; its tasks already enqueued stay. A class schedule comes back when a worker
 * with its class starts: remove `static schedule` from the class, or pause it. False when there
 * is no such schedule.
 */
export async function deleteSchedule(name: string, options: { dataSource?: DataSource } = {}): Promise<boolean> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  return deleteScheduleRows(dataSource.manager, checkName(name, "deleteSchedule(name)"));
}

/** Every schedule (or the one named), with its next run by the database's clock. */
export async function listSchedules(options: { dataSource?: DataSource; name?: string } = {}): Promise<ScheduleInfo[]> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  const name = options.name === undefined ? undefined : checkName(options.name, "listSchedules: name");
  const rows = await readSchedules(dataSource.manager, { name });
  const now = await ormqFor(dataSource).clock.now();
  return rows.map((row) => {
    let nextRun: Date | null = null;
    try {
      const next = nextTick(cronOf(row), Math.max(row.lastTick ?? row.createdAt, now));
      nextRun = next === null ? null : new Date(next);
    } catch {
      // A definition written by hand that croner refuses: shown without a next run (the scheduler logs it).
    }
    return {
      name: row.name,
      type: row.type,
      cron: row.cron,
      timezone: row.timezone,
      catchUp: row.catchUp,
      source: row.source,
      paused: row.paused,
      lastTick: row.lastTick === null || !Number.isFinite(row.lastTick) ? null : new Date(row.lastTick),
      nextRun,
    };
  });
}

function checkName(name: unknown, where: string): string {
  // The text any query may compare first (NUL, lone surrogates), then what a name may hold.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(checkFilterText(name, where))) {
    throw new InvalidOptionError(`${where} must be 1 to 255 characters without control characters, got ${JSON.stringify(name)}`);
  }
  return name as string;
}
