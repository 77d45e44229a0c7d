/**
 * Schedules as declared (`static schedule`, `createSchedule`): checked once, and the tick maths.
 * croner parses the cron expression and computes the times, in the schedule's time zone; ormq
 * only decides which of the ticks since the last one a scheduler pass enqueues (`dueTicks`), a
 * pure function of the clock it is given.
 */
import { Cron } from "croner";
import type { CatchUp, ScheduleOption } from "../../entities/classOptions";

export type { CatchUp, ScheduleOption };

/** A checked schedule definition. */
export interface ScheduleSpec {
  cron: string;
  /** An IANA time zone, or null for UTC. */
  timezone: string | null;
  catchUp: CatchUp;
}

/**
 * A tick found this long after its time still counts as on time, whatever `catchUp` says: a
 * scheduler pass runs at the tick, and this covers a pass that was late (a busy event loop, a
 * slow database, a worker restarting). A tick later than this was missed.
 */
export const ON_TIME_MS = 10_000;

/** `catchUp: "all"` enqueues at most this many missed ticks, the latest ones; older ones are skipped. */
export const MAX_CATCH_UP = 100;

/** A cron expression's length cap (the column's). */
const MAX_CRON_CHARS = 255;

const CATCH_UPS: readonly CatchUp[] = ["skip", "one", "all"];

function isCatchUp(value: unknown): value is CatchUp {
  return CATCH_UPS.includes(value as CatchUp);
}

/**
 * Checks a schedule definition. `where` names it in the error (`NightlyReport.schedule`,
 * `createSchedule`), and `fail` makes the error (TaskDefinitionError for a class,
 * InvalidOptionError for a run-time schedule).
 */
export function scheduleSpecOf(value: unknown, where: string, fail: (message: string) => Error): ScheduleSpec {
  const option = typeof value === "string" ? { cron: value } : value;
  if (option === null || typeof option !== "object" || Array.isArray(option)) {
    throw fail(`${where}: expected a cron string or { cron, timezone?, catchUp?, data? }, got ${describe(value)}`);
  }
  const { cron, timezone, catchUp } = option as Partial<ScheduleOption>;
  if (typeof cron !== "string" || cron.trim() === "" || cron.length > MAX_CRON_CHARS) {
    throw fail(`${where}.cron: expected a cron expression of at most ${MAX_CRON_CHARS} characters, got ${describe(cron)}`);
  }
  if (timezone !== undefined && timezone !== null && (typeof timezone !== "string" || timezone.trim() === "" || timezone.length > 64)) {
    // An empty name is refused, not taken as UTC: croner reads "" as the host's local time, and a
    // schedule that means UTC says so by leaving the time zone out.
    throw fail(`${where}.timezone: expected an IANA time zone name such as "Europe/Paris" (leave it out for UTC), got ${describe(timezone)}`);
  }
  if (catchUp !== undefined && !isCatchUp(catchUp)) {
    throw fail(`${where}.catchUp: expected "skip", "one" or "all", got ${describe(catchUp)}`);
  }
  const spec: ScheduleSpec = { cron: cron.trim(), timezone: timezone ?? null, catchUp: catchUp ?? "skip" };
  let next: Date | null;
  try {
    next = cronOf(spec).nextRun(new Date());
  } catch (err) {
    // croner's RangeError (the expression) or TypeError (the time zone), named here.
    const what = /timezone/i.test(String((err as Error).message)) ? `timezone ${JSON.stringify(spec.timezone)}` : `cron ${JSON.stringify(spec.cron)}`;
    throw fail(`${where}: invalid ${what}: ${(err as Error).message}`);
  }
  if (next === null) throw fail(`${where}: cron ${JSON.stringify(spec.cron)} never fires`);
  return spec;
}

/** croner's schedule object for a spec (paused: ormq runs no croner timers, only its maths). */
export function cronOf(spec: Pick<ScheduleSpec, "cron" | "timezone">): Cron {
  // A blank time zone in a row written by hand would be the host's local time to croner.
  if (spec.timezone !== null && spec.timezone.trim() === "") throw new RangeError("timezone: an empty time zone name (leave it out for UTC)");
  return new Cron(spec.cron, { paused: true, timezone: spec.timezone ?? "UTC", mode: "5-or-6-parts" });
}

/** The first tick strictly after `after` (epoch ms), or null when there is none. */
export function nextTick(cron: Cron, after: number): number | null {
  return cron.nextRun(new Date(after))?.getTime() ?? null;
}

/** What a scheduler pass does with one schedule. */
export interface DueTicks {
  /** The ticks to enqueue, oldest first. */
  enqueue: number[];
  /** The tick to record as the last one (null: nothing is due, leave the row alone). */
  last: number | null;
  /** Ticks missed and not enqueued (for the log). */
  skipped: number;
}

/**
 * The ticks due at `now`: those after `after` (the last tick recorded, or the schedule's creation)
 * and not after `now`. Ticks at most ON_TIME_MS late are enqueued; older ones were missed, and
 * `catchUp` says what becomes of them: "skip" drops them, "one" enqueues the latest, "all" every
 * one (the latest MAX_CATCH_UP of them). `last` is the latest tick either way, so a missed tick is
 * decided once.
 */
export function dueTicks(cron: Cron, catchUp: CatchUp, after: number, now: number): DueTicks {
  const lateBefore = now - ON_TIME_MS;
  const onTime: number[] = [];
  // On time: (max(after, lateBefore - 1), now]. At most ON_TIME_MS of ticks: a few thousand at
  // one a second, which is the finest croner gives.
  for (let t = nextTick(cron, Math.max(after, lateBefore - 1)); t !== null && t <= now; t = nextTick(cron, t)) onTime.push(t);
  // Missed: (after, lateBefore), latest first; asked of croner backwards, so a schedule that
  // stood still for a year costs no walk through its ticks.
  const wanted = catchUp === "all" ? MAX_CATCH_UP : 1;
  // (croner counts back from the reference's whole second: give it the next one, as ticks are
  // whole seconds none is in between.)
  const reference = new Date(Math.ceil(lateBefore / 1000) * 1000);
  const missed = after < lateBefore ? cron.previousRuns(wanted, reference).map((d) => d.getTime()).filter((t) => t > after && t < lateBefore) : [];
  if (onTime.length === 0 && missed.length === 0) return { enqueue: [], last: null, skipped: 0 };
  const caught = catchUp === "skip" ? [] : catchUp === "one" ? missed.slice(0, 1) : missed;
  const last = onTime.length > 0 ? onTime[onTime.length - 1] : missed[0];
  // How many were missed in all is not counted (it may be millions); at least those seen less those enqueued.
  return { enqueue: [...caught.reverse(), ...onTime], last, skipped: missed.length - caught.length };
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
  if (value === undefined || value === null || typeof value !== "object") return String(value);
  return Array.isArray(value) ? "an array" : "an object";
}
