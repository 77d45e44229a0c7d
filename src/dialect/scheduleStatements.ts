/**
 * The statements on `ormq_schedules`, for both databases through TypeORM's query builder, and the
 * tick's write: the guarded advance of a schedule's `last_tick` and the insert of its tasks, in one
 * transaction. The advance is guarded by the tick, the revision and the pause the scheduler read:
 * of several schedulers that read the same row, the first to commit advances it and the others
 * update no row (PostgreSQL re-checks the WHERE after the winner commits; SQLite's write lock
 * orders them) and write no task. So each tick becomes exactly one task.
 */
import type { DataSource, EntityManager } from "typeorm";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { ScheduleEntity, type ScheduleSource } from "../../entities/ScheduleEntity";
import { bulkInsert } from "./bulkInsert";
import { contractOf, tablesOf } from "./index";
import { inFileTurn } from "./sqlite/connectionGuard";

/** A schedule's definition, as written. */
export interface ScheduleDefinition {
  name: string;
  type: string;
  cron: string;
  timezone: string | null;
  catchUp: string;
  task: string;
  source: ScheduleSource;
}

/** A schedule's row as read (numbers as numbers; odd values left for the reader to refuse). */
export interface ScheduleRow extends ScheduleDefinition {
  paused: boolean;
  revision: number;
  lastTick: number | null;
  createdAt: number;
  updatedAt: number;
}

/** Every schedule, by name; `active` leaves paused ones out. */
export async function readSchedules(m: EntityManager, options: { active?: boolean; name?: string } = {}): Promise<ScheduleRow[]> {
  const query = m.getRepository(ScheduleEntity).createQueryBuilder("s").orderBy("s.name");
  if (options.active) query.andWhere("s.paused = 0");
  if (options.name !== undefined) query.andWhere("s.name = :name", { name: options.name });
  return (await query.getMany()).map((r) => ({
    name: r.name,
    type: r.type,
    cron: r.cron,
    timezone: r.timezone,
    catchUp: r.catchUp,
    task: r.task,
    source: r.source,
    paused: Number(r.paused) !== 0,
    revision: Number(r.revision),
    lastTick: r.lastTick === null ? null : Number(r.lastTick),
    createdAt: Number(r.createdAt),
    updatedAt: Number(r.updatedAt),
  }));
}

/** Writes a new schedule unless one of that name exists (read it back to know which stands). */
export async function insertSchedule(m: EntityManager, definition: ScheduleDefinition, now: number): Promise<void> {
  await m
    .createQueryBuilder()
    .insert()
    .into(ScheduleEntity)
    .values({ ...definition, paused: 0, revision: 0, lastTick: null, createdAt: String(now), updatedAt: String(now) })
    .orIgnore()
    .updateEntity(false)
    .execute();
}

/**
 * Replaces a schedule's definition (cron, time zone, catch-up, task), guarded by the revision
 * read and the source, and raises the revision. Its last tick stays: a changed cron goes on from
 * there. True when it was changed.
 */
export async function updateSchedule(m: EntityManager, definition: ScheduleDefinition, revision: number, now: number): Promise<boolean> {
  const { name, type, cron, timezone, catchUp, task, source } = definition;
  const result = await m
    .createQueryBuilder()
    .update(ScheduleEntity)
    .set({ type, cron, timezone, catchUp, task, revision: () => "revision + 1", updatedAt: String(now) })
    .where("name = :name AND source = :source AND revision = :revision", { name, source, revision })
    .execute();
  return result.affected === 1;
}

/** Pauses or resumes a schedule. True when it exists. */
export async function setSchedulePaused(m: EntityManager, name: string, paused: boolean, now: number): Promise<boolean> {
  const result = await m
    .createQueryBuilder()
    .update(ScheduleEntity)
    .set({ paused: paused ? 1 : 0, revision: () => "revision + 1", updatedAt: String(now) })
    .where("name = :name", { name })
    .execute();
  return result.affected === 1;
}

/** Deletes schedules by name (only of `source`, when given). True when one existed. */
export async function deleteScheduleRows(m: EntityManager, names: string | readonly string[], source?: ScheduleSource): Promise<boolean> {
  const list = typeof names === "string" ? [names] : names;
  if (list.length === 0) return false;
  const query = m.createQueryBuilder().delete().from(ScheduleEntity).where("name IN (:...list)", { list });
  if (source) query.andWhere("source = :source", { source });
  return ((await query.execute()).affected ?? 0) > 0;
}

/** Whether a stored definition is this one. */
export function sameDefinition(row: ScheduleRow, d: ScheduleDefinition): boolean {
  return row.type === d.type && row.cron === d.cron && row.timezone === d.timezone && row.catchUp === d.catchUp && row.task === d.task && row.source === d.source;
}

/** A tick's write: which schedule, as read, and the rows of its tasks. */
export interface TickWrite {
  name: string;
  revision: number;
  lastTick: number | null;
  next: number;
  /** The columns of its tasks, and each task's values (see schedule/taskTemplate.ts tickRow). */
  columns: string[];
  rows: unknown[][];
}

/**
 * Advances the schedule from `lastTick` to `next` and inserts its tasks, in one transaction; does
 * nothing when another scheduler advanced it first (or it was changed or paused since it was
 * read). Returns the ids of the tasks written, or null when it lost; a duplicate the unique guard
 * skipped has no id.
 */
export async function writeTick(dataSource: DataSource, write: TickWrite, announce: (m: EntityManager) => void): Promise<string[] | null> {
  return inTurn(dataSource, () => tickTransaction(dataSource, write, announce));
}

/** Runs a schedule write: on an embedded database, one at a time per file in this process (see inFileTurn). */
function inTurn<T>(dataSource: DataSource, write: () => Promise<T>): Promise<T> {
  return contractOf(dataSource).connection.writesTakeTurnsPerFile ? inFileTurn(String(dataSource.options.database), write) : write();
}

function tickTransaction(dataSource: DataSource, write: TickWrite, announce: (m: EntityManager) => void): Promise<string[] | null> {
  return dataSource.transaction(async (m) => {
    const advanced = await m
      .createQueryBuilder()
      .update(ScheduleEntity)
      .set({ lastTick: String(write.next) })
      .where("name = :name AND revision = :revision AND paused = 0", { name: write.name, revision: write.revision })
      .andWhere(write.lastTick === null ? "last_tick IS NULL" : "last_tick = :lastTick", { lastTick: String(write.lastTick) })
      .execute();
    if (advanced.affected !== 1) return null;
    const ids = await bulkInsert(m.queryRunner!, tablesOf(dataSource).tasks, write.columns, write.rows, "id", { maySkip: true });
    announce(m);
    return ids.map(String);
  });
}

/** A schedule whose last tick is ahead of the database's clock, as read (see recoverSchedule). */
export interface ScheduleAhead {
  name: string;
  revision: number;
  lastTick: number;
}

/**
 * Brings back a schedule whose last tick a clock that ran ahead left in the future: its last tick
 * becomes `now`, and the tasks it wrote for ticks after `now` (pending; a tick task's created_at is
 * its tick) are deleted, since their ticks will be written again when they really come. Guarded
 * like a tick (name, revision, the last tick read): of several schedulers, one does it. Returns
 * how many tasks were deleted, or null when another scheduler (or a change) came first.
 */
export async function recoverSchedule(dataSource: DataSource, ahead: ScheduleAhead, now: number): Promise<number | null> {
  return inTurn(dataSource, () =>
    dataSource.transaction(async (m) => {
      const moved = await m
        .createQueryBuilder()
        .update(ScheduleEntity)
        .set({ lastTick: String(now) })
        .where("name = :name AND revision = :revision AND last_tick = :lastTick", { name: ahead.name, revision: ahead.revision, lastTick: String(ahead.lastTick) })
        .execute();
      if (moved.affected !== 1) return null;
      const removed = await m
        .createQueryBuilder()
        .delete()
        .from(BaseTaskEntity)
        .where("schedule_name = :name AND status = 'pending' AND created_at > :now", { name: ahead.name, now })
        .execute();
      return removed.affected ?? 0;
    }),
  );
}

/**
 * Inserts a schedule's task rows and rolls them back: what a tick would write, tried once when the
 * schedule is defined, so that a row the database refuses (a NUL byte in PostgreSQL text, a value
 * longer than its column) is refused then, not at every tick. Throws the database's error.
 */
export async function tryTickRows(dataSource: DataSource, columns: string[], rows: unknown[][]): Promise<void> {
  const rolledBack = new Error("ormq: a trial insert, rolled back");
  return inTurn(dataSource, () =>
    dataSource
      .transaction(async (m) => {
        await bulkInsert(m.queryRunner!, tablesOf(dataSource).tasks, columns, rows, "id", { maySkip: true });
        throw rolledBack;
      })
      .catch((err: unknown) => {
        if (err !== rolledBack) throw err;
      }),
  );
}
