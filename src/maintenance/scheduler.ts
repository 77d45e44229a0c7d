/**
 * A worker's scheduler: enqueues the tasks of every schedule in `ormq_schedules` at their ticks.
 * Any number of workers run one; each tick becomes exactly one task because a tick is written
 * only with the guarded advance of its schedule's row (see dialect/scheduleStatements.ts).
 *
 * It wakes at the next tick of any schedule (by the database's clock), and at least every
 * MAX_SLEEP_MS to see schedules made, changed or paused elsewhere. A schedule that cannot be
 * read (a bad cron or time zone written to the table by hand, a task row its table refuses) is
 * logged once per change and passed over; the others go on.
 */
import type { DataSource, EntityManager } from "typeorm";
import { missingTable } from "../dialect/controlsRead";
import { readSchedules, recoverSchedule, writeTick, type ScheduleRow } from "../dialect/scheduleStatements";
import { announcementOf } from "../client/announcements";
import type { Logger } from "../logger";
import type { TaskType } from "../registry";
import { registerClassSchedules } from "../schedule/definitions";
import { cronOf, dueTicks, nextTick, type CatchUp } from "../schedule/scheduleSpec";
import { parseTemplate, tickRow } from "../schedule/taskTemplate";
import { ormqFor } from "../client/client";

/** The longest a scheduler sleeps: how soon it sees a schedule made or changed elsewhere. */
export const MAX_SLEEP_MS = 2_000;

/** Past its tick, how long a scheduler waits before looking, so that the database's clock has passed it too. */
const AFTER_TICK_MS = 5;

export class Scheduler {
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private wakeUp: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  /** The last problem logged per schedule, so that each is logged once. */
  private readonly reported = new Map<string, string>();

  constructor(
    private readonly dataSource: DataSource,
    private readonly types: readonly TaskType[],
    private readonly logger: Logger,
    /** Whether this worker ticks this round (see Maintainer); the others look again later. */
    private readonly mine: () => Promise<boolean> = async () => true,
  ) {
    // SQLite: the tick's transaction begins IMMEDIATE, so schedulers of several processes queue
    // for the write lock instead of failing busy (see dialect/sqlite/connectionGuard.ts).
    ormqFor(dataSource).prepare();
  }

  /** Writes the class schedules, then runs until stopped. */
  async start(): Promise<this> {
    try {
      await registerClassSchedules(this.dataSource, this.types, this.logger);
    } catch (err) {
      throw missingTable(err, "ormq_schedules", "OrmqSchedules");
    }
    this.loop = this.run();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.wakeUp?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let sleepMs = MAX_SLEEP_MS;
      try {
        if (await this.mine()) sleepMs = await this.pass();
      } catch (err) {
        this.report("", String(err), () => this.logger.warn({ err }, "the scheduler could not read the schedules; trying again"));
      }
      if (this.stopped) return;
      await new Promise<void>((resolve) => {
        this.wakeUp = resolve;
        this.timer = setTimeout(resolve, sleepMs);
        this.timer.unref();
      });
    }
  }

  /** One look at every active schedule. Returns how long to sleep until the next tick. */
  async pass(): Promise<number> {
    const rows = await readSchedules(this.dataSource.manager, { active: true });
    let now = await ormqFor(this.dataSource).clock.now();
    let next = now + MAX_SLEEP_MS;
    for (const row of rows) {
      if (this.stopped) break;
      try {
        const cron = cronOf(row);
        if (row.lastTick !== null && aheadOfClock(cron, row.lastTick, now)) {
          await this.recover(row, row.lastTick, now);
          continue;
        }
        const after = row.lastTick ?? row.createdAt;
        const due = dueTicks(cron, catchUpOf(row.catchUp), Number.isFinite(after) ? after : now, now);
        if (due.last !== null) await this.enqueue(row, due.enqueue, due.last, due.skipped, now);
        const following = nextTick(cron, Math.max(due.last ?? after, now));
        if (following !== null) next = Math.min(next, following);
        this.reported.delete(row.name);
      } catch (err) {
        this.report(row.name, `${row.revision}:${String(err)}`, () =>
          this.logger.error({ err, schedule: row.name, type: row.type }, "schedule passed over: its definition or its task cannot be used (fix or delete it)"),
        );
      }
      now = await ormqFor(this.dataSource).clock.now();
    }
    return Math.max(AFTER_TICK_MS, Math.min(MAX_SLEEP_MS, next - now + AFTER_TICK_MS));
  }

  private async enqueue(row: ScheduleRow, ticks: readonly number[], last: number, skipped: number, now: number): Promise<void> {
    const template = parseTemplate(row.task);
    const made = ticks.map((tick) => tickRow(template, row.name, tick, now));
    const columns = made[0]?.columns ?? tickRow(template, row.name, last, now).columns;
    const queue = String(template.values[template.columns.indexOf("queue")] ?? "default");
    const ids = await writeTick(
      this.dataSource,
      { name: row.name, revision: row.revision, lastTick: row.lastTick, next: last, columns, rows: made.map((m) => m.values) },
      (m: EntityManager) => ormqFor(m.connection).announcements.inserted(m.queryRunner!, [announcementOf(queue, row.type)]),
    );
    if (ids === null) return; // another scheduler wrote these ticks
    if (skipped > 0) this.logger.info({ schedule: row.name, skipped, catchUp: row.catchUp }, "missed ticks of a schedule were not enqueued");
    this.logger.debug({ schedule: row.name, ticks: ticks.map((t) => new Date(t).toISOString()), taskIds: ids }, "schedule ticks enqueued");
  }

  /**
   * A schedule whose last tick is more than a period ahead of the database's clock: a clock (this
   * host's, or the database's) ran ahead while a scheduler wrote ticks, and came back. Left alone,
   * it would write nothing until the clock reached that tick again. It goes on from now; the tasks
   * written for ticks still ahead are removed (their ticks are written when they come), and it is
   * said once.
   */
  private async recover(row: ScheduleRow, lastTick: number, seenAt: number): Promise<void> {
    // The clock is read again first: the offset in use may itself have been measured during the jump.
    const now = await ormqFor(this.dataSource).clock.fresh();
    if (!aheadOfClock(cronOf(row), lastTick, now)) {
      this.logger.debug({ schedule: row.name, seenAt, now }, "a schedule's last tick looked ahead of a stale clock reading; not moved");
      return;
    }
    const removed = await recoverSchedule(this.dataSource, { name: row.name, revision: row.revision, lastTick }, now);
    if (removed === null) return; // another scheduler did it
    this.logger.warn(
      { schedule: row.name, lastTick: new Date(lastTick).toISOString(), now: new Date(now).toISOString(), aheadMs: lastTick - now, removedTasks: removed },
      "a schedule's last tick was ahead of the database's clock (a clock jumped?): it ticks again from now, and the tasks it had written for ticks still ahead were removed",
    );
  }

  private report(key: string, problem: string, log: () => void): void {
    if (this.reported.get(key) === problem) return;
    this.reported.set(key, problem);
    log();
  }
}

/**
 * Whether a last tick is further ahead of `now` than one period of the schedule (and a second, for
 * clocks of several hosts that differ by milliseconds): no scheduler could have written it by
 * this clock. A jump shorter than a period leaves nothing to mend: the tick written is the next
 * one, due at its own time.
 */
export function aheadOfClock(cron: ReturnType<typeof cronOf>, lastTick: number, now: number): boolean {
  if (lastTick <= now + 1_000) return false;
  const following = nextTick(cron, lastTick);
  const period = following === null ? 0 : following - lastTick;
  return lastTick - now > Math.max(period, 1_000);
}

function catchUpOf(value: string): CatchUp {
  return value === "one" || value === "all" ? value : "skip";
}

/** Starts a worker's scheduler (after writing its class schedules). */
export function startScheduler(dataSource: DataSource, types: readonly TaskType[], logger: Logger, mine?: () => Promise<boolean>): Promise<Scheduler> {
  return new Scheduler(dataSource, types, logger, mine).start();
}
