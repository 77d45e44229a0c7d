/**
 * The tick maths of schedules, with the clock given: which ticks a scheduler pass enqueues after
 * downtime (catchUp), across DST changes, and what definitions are refused. croner computes the
 * times; these pin down ormq's use of them.
 */
import fc from "fast-check";
import { TaskDefinitionError } from "../../src";
import { cronOf, dueTicks, MAX_CATCH_UP, nextTick, ON_TIME_MS, scheduleSpecOf } from "../../src/schedule/scheduleSpec";
import { scheduledForOf } from "../../src/worker/context";

const spec = (cron: string, timezone: string | null = null) => cronOf({ cron, timezone });
const fail = (m: string) => new TaskDefinitionError(m);
const S = 1000;
const HOUR = 3_600_000;

describe("dueTicks", () => {
  const everySecond = spec("* * * * * *");

  it("enqueues each tick since the last one when it is on time", () => {
    expect(dueTicks(everySecond, "skip", 10 * S, 13.5 * S)).toEqual({ enqueue: [11 * S, 12 * S, 13 * S], last: 13 * S, skipped: 0 });
    expect(dueTicks(everySecond, "skip", 13 * S, 13.9 * S)).toEqual({ enqueue: [], last: null, skipped: 0 });
  });

  it("after downtime: skip drops the missed ticks, one enqueues the latest, all enqueues each up to the cap", () => {
    const last = 0;
    const now = HOUR + 500; // an hour of once-a-second ticks, the last ON_TIME_MS of them on time
    const onTime = Array.from({ length: ON_TIME_MS / S }, (_, i) => now - 500 - ON_TIME_MS + (i + 1) * S);
    const skip = dueTicks(everySecond, "skip", last, now);
    expect(skip.enqueue).toEqual(onTime);
    expect(skip.last).toBe(HOUR);
    const one = dueTicks(everySecond, "one", last, now);
    expect(one.enqueue).toEqual([onTime[0] - S, ...onTime]);
    const all = dueTicks(everySecond, "all", last, now);
    expect(all.enqueue).toHaveLength(MAX_CATCH_UP + onTime.length);
    expect(all.enqueue.slice(0, MAX_CATCH_UP)).toEqual(Array.from({ length: MAX_CATCH_UP }, (_, i) => onTime[0] - (MAX_CATCH_UP - i) * S));
    expect(all.skipped).toBe(0); // counted among those seen: the cap's worth
  });

  it("a daily schedule down for three days: skip enqueues nothing and moves on; one enqueues the last day's", () => {
    const daily = spec("0 2 * * *");
    const day0 = Date.UTC(2026, 0, 1, 2);
    const now = day0 + 3 * 24 * HOUR + 5 * HOUR;
    expect(dueTicks(daily, "skip", day0, now)).toEqual({ enqueue: [], last: day0 + 3 * 24 * HOUR, skipped: 1 });
    expect(dueTicks(daily, "one", day0, now).enqueue).toEqual([day0 + 3 * 24 * HOUR]);
    expect(dueTicks(daily, "all", day0, now).enqueue).toEqual([1, 2, 3].map((d) => day0 + d * 24 * HOUR));
    // Once decided, the same ticks are not due again.
    expect(dueTicks(daily, "one", day0 + 3 * 24 * HOUR, now).last).toBeNull();
  });

  it("a tick a few seconds late is still on time, whatever catchUp says", () => {
    const minutely = spec("0 * * * * *");
    expect(dueTicks(minutely, "skip", 0, 60 * S + ON_TIME_MS).enqueue).toEqual([60 * S]);
    expect(dueTicks(minutely, "skip", 0, 60 * S + ON_TIME_MS + 1).enqueue).toEqual([]);
  });

  it("for any clock, ticks are increasing, after the last one, not after now, and decided once", () => {
    const crons = ["* * * * * *", "*/7 * * * * *", "0 * * * * *", "*/5 * * * *", "0 2 * * *"];
    fc.assert(
      fc.property(
        fc.constantFrom(...crons),
        fc.constantFrom("skip" as const, "one" as const, "all" as const),
        fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 }),
        fc.integer({ min: 0, max: 5 * 24 * HOUR }),
        (cron, catchUp, after, gap) => {
          const c = spec(cron);
          const now = after + gap;
          const due = dueTicks(c, catchUp, after, now);
          for (let i = 1; i < due.enqueue.length; i++) expect(due.enqueue[i]).toBeGreaterThan(due.enqueue[i - 1]);
          for (const t of due.enqueue) expect(t > after && t <= now).toBe(true);
          if (due.last === null) return expect(due.enqueue).toEqual([]);
          expect(due.last > after && due.last <= now).toBe(true);
          if (due.enqueue.length > 0) expect(due.enqueue.at(-1)).toBe(due.last);
          expect(dueTicks(c, catchUp, due.last, now)).toEqual({ enqueue: [], last: null, skipped: 0 });
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe("time zones and DST (croner's rules, as ormq documents them)", () => {
  const paris = spec("30 2 * * *", "Europe/Paris");

  it("spring forward: a time that does not exist runs at the same wall time after the gap (03:30 CEST)", () => {
    // 2026-03-29: 02:00 → 03:00 in Paris.
    expect(new Date(nextTick(paris, Date.UTC(2026, 2, 28, 12))!).toISOString()).toBe("2026-03-29T01:30:00.000Z");
  });

  it("fall back: a time that happens twice runs once, at its first occurrence", () => {
    // 2026-10-25: 03:00 → 02:00 in Paris; 02:30 is 00:30Z (CEST) and 01:30Z (CET).
    const first = nextTick(paris, Date.UTC(2026, 9, 24, 12))!;
    expect(new Date(first).toISOString()).toBe("2026-10-25T00:30:00.000Z");
    expect(new Date(nextTick(paris, first)!).toISOString()).toBe("2026-10-26T01:30:00.000Z");
  });
});

describe("scheduleSpecOf", () => {
  it("takes a cron string or an object, with seconds as a sixth field", () => {
    expect(scheduleSpecOf("0 2 * * *", "X.schedule", fail)).toEqual({ cron: "0 2 * * *", timezone: null, catchUp: "skip" });
    expect(scheduleSpecOf({ cron: "*/10 * * * * *", timezone: "Asia/Tokyo", catchUp: "all" }, "X.schedule", fail)).toEqual({
      cron: "*/10 * * * * *",
      timezone: "Asia/Tokyo",
      catchUp: "all",
    });
  });

  it.each([
    ["61 * * * *", /X\.schedule: invalid cron "61 \* \* \* \*"/],
    ["* * * * * * *", /invalid cron/],
    ["0 0 30 2 *", /never fires/],
    ["", /X\.schedule\.cron: expected a cron expression/],
  ])("refuses cron %j with an error naming it", (cron, message) => {
    expect(() => scheduleSpecOf(cron, "X.schedule", fail)).toThrow(message);
    expect(() => scheduleSpecOf(cron, "X.schedule", fail)).toThrow(TaskDefinitionError);
  });

  it("refuses an unknown time zone and catch-up, naming them", () => {
    expect(() => scheduleSpecOf({ cron: "* * * * *", timezone: "Mars/Base" }, "X.schedule", fail)).toThrow(/invalid timezone "Mars\/Base"/);
    expect(() => scheduleSpecOf({ cron: "* * * * *", catchUp: "some" }, "X.schedule", fail)).toThrow(/X\.schedule\.catchUp/);
    expect(() => scheduleSpecOf(42, "X.schedule", fail)).toThrow(/expected a cron string/);
  });

  it("any input is a spec or one TaskDefinitionError, never another error", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.record({ cron: fc.string(), timezone: fc.option(fc.string()), catchUp: fc.string() }), fc.anything()), (value) => {
        try {
          scheduleSpecOf(value, "X.schedule", fail);
        } catch (err) {
          expect(err).toBeInstanceOf(TaskDefinitionError);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe("scheduledForOf", () => {
  const tick = new Date("2026-11-30T02:00:00Z");
  const later = (ms: number) => new Date(tick.getTime() + ms);
  it("is the tick on every attempt: a retry moves runAt later, never createdAt", () => {
    expect(scheduledForOf({ scheduleName: "nightly", createdAt: tick, runAt: tick })).toEqual(tick);
    expect(scheduledForOf({ scheduleName: "nightly", createdAt: tick, runAt: later(60_000) })).toEqual(tick);
    // A tick task written before the tick was its createdAt: its first runAt is the tick.
    expect(scheduledForOf({ scheduleName: "nightly", createdAt: later(3_600_000), runAt: tick })).toEqual(tick);
    expect(scheduledForOf({ scheduleName: null, createdAt: tick, runAt: tick })).toBeNull();
    // A row damaged by hand: what is left of it, never a throw.
    expect(scheduledForOf({ scheduleName: "nightly", createdAt: null, runAt: later(5) })).toEqual(later(5));
    expect(scheduledForOf({ scheduleName: "nightly", createdAt: new Date(NaN), runAt: null })).toBeNull();
  });
});
