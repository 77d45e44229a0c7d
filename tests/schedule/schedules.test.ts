/**
 * Schedules on both databases: a class schedule ticking in real time under three workers on
 * separate DataSources (as three processes), each tick enqueued once; concurrent scheduler passes
 * over the same due ticks; run-time schedules enqueued by a worker that lacks the class; pausing;
 * and a hand-damaged schedule row that must not stop the others.
 */
import fc from "fast-check";
import { ChildEntity, type DataSource } from "typeorm";
import { BaseTaskEntity, InvalidOptionError, OrmqError, processForever, processN, TaskDefinitionError } from "../../src";
import { createSchedule, deleteSchedule, listSchedules, pauseSchedule, resumeSchedule, ScheduleEntity } from "../../src/admin";
import { Scheduler } from "../../src/maintenance/scheduler";
import { EverySecond, ReportTask, waitEntities } from "../fixtures/schedules";
import { testEntities } from "../fixtures/tasks";
import { createTestDb, WITH_MARIADB, memoryLogger, openDataSource, useTestDatabase, type TestDb } from "../support/db";
import { until } from "../support/helpers";
import { ormqFor } from "../../src/client/client";

/** A class whose schedule can never be read: a worker on a DataSource with it refuses to start. */
@ChildEntity("bad_schedule")
class BadSchedule extends BaseTaskEntity {
  static schedule = { cron: "0 2 * * *", timezone: "Atlantis/Central" };
  async run() {}
}

const scheduledRuns = async (ds: DataSource, type: string): Promise<number[]> =>
  (await ds.getRepository(BaseTaskEntity).find({ where: { type }, order: { runAt: "ASC" } })).map((t) => t.runAt.getTime());

/** A scheduler on `ds`, run one pass at a time by the test. */
const scheduler = (ds: DataSource) => new Scheduler(ds, [...ormqFor(ds).registry.byKey.values()], memoryLogger().logger);

describe.each(WITH_MARIADB)("schedules on %s", (dialect) => {
  let ds: DataSource;
  let db: TestDb;
  useTestDatabase(dialect, (o) => ((ds = o.ds), (db = o.db)), [...testEntities, ...waitEntities, EverySecond]);
  afterEach(async () => {
    // Each test starts with no run-time schedule and no report task.
    await ds.getRepository(ScheduleEntity).delete({ source: "api" });
    await ds.getRepository(BaseTaskEntity).delete({ type: "report_task" });
  });

  it("a once-a-second class schedule under three workers for five seconds: consecutive ticks, none twice, none skipped", async () => {
    EverySecond.ticks = [];
    const others = [await openDataSource(db, [...testEntities, ...waitEntities, EverySecond], {}, false), await openDataSource(db, [...testEntities, ...waitEntities, EverySecond], {}, false)];
    const stop = new AbortController();
    const workers = [ds, ...others].map((source) => processForever(EverySecond, { dataSource: source, signal: stop.signal, pollIntervalMs: 100, logger: memoryLogger().logger }));
    try {
      await until("six ticks run", () => EverySecond.ticks.length >= 6, 20_000);
    } finally {
      stop.abort();
      await Promise.all(workers);
      for (const o of others) await o.destroy();
    }
    const ticks = await scheduledRuns(ds, "every_second");
    expect(ticks.length).toBeGreaterThanOrEqual(6);
    for (let i = 1; i < ticks.length; i++) expect(ticks[i] - ticks[i - 1]).toBe(1000);
    expect(ticks.every((t) => t % 1000 === 0)).toBe(true);
    // Each run saw its own tick as ctx.scheduledFor.
    expect(new Set(EverySecond.ticks).size).toBe(EverySecond.ticks.length);
    for (const t of EverySecond.ticks) expect(ticks).toContain(t);
    const [row] = await listSchedules({ dataSource: ds, name: "every_second" });
    expect(row).toMatchObject({ type: "every_second", cron: "* * * * * *", source: "class", paused: false });
    expect(row.lastTick!.getTime()).toBe(ticks.at(-1));
    await pauseSchedule("every_second", { dataSource: ds });
  }, 30_000);

  it("three schedulers passing over the same due ticks at once write each tick once", async () => {
    await ds.getRepository(BaseTaskEntity).delete({ type: "report_task" });
    await createSchedule({ dataSource: ds, name: "race", type: ReportTask, cron: "* * * * * *", data: { label: "race" } });
    // Five seconds of ticks due now: set the last tick back instead of waiting for them.
    const start = Math.floor(Date.now() / 1000) * 1000 - 5000;
    await ds.getRepository(ScheduleEntity).update({ name: "race" }, { lastTick: String(start) });
    const others = [await openDataSource(db, testEntities, {}, false), await openDataSource(db, testEntities, {}, false)];
    try {
      await Promise.all([ds, ...others].map((source) => scheduler(source).pass()));
    } finally {
      for (const o of others) await o.destroy();
    }
    const ticks = await scheduledRuns(ds, "report_task");
    const [row] = await listSchedules({ dataSource: ds, name: "race" });
    expect(ticks[0]).toBe(start + 1000);
    expect(ticks.at(-1)).toBe(row.lastTick!.getTime());
    expect(ticks.length).toBeGreaterThanOrEqual(5);
    for (let i = 1; i < ticks.length; i++) expect(ticks[i] - ticks[i - 1]).toBe(1000);
    const tasks = await ds.getRepository(ReportTask).find();
    expect(tasks.every((t) => t.label === "race" && t.scheduleName === "race" && t.status === "pending")).toBe(true);
    expect(await deleteSchedule("race", { dataSource: ds })).toBe(true);
  });

  it("a run-time schedule is enqueued by a worker without its class, and run by one with it", async () => {
    await ds.getRepository(BaseTaskEntity).delete({ type: "report_task" });
    const info = await createSchedule({ dataSource: ds, name: "nightly-eu", type: "report_task", cron: "0 2 * * *", timezone: "Europe/Paris", data: { label: "eu", priority: 5 } });
    expect(info).toMatchObject({ name: "nightly-eu", type: "report_task", timezone: "Europe/Paris", source: "api", paused: false, lastTick: null });
    expect(info.nextRun!.getTime()).toBeGreaterThan(Date.now());
    // Two nights missed, as if no worker ran: catchUp "skip" (the default) leaves them.
    const twoDaysAgo = Date.now() - 2 * 86_400_000;
    await ds.getRepository(ScheduleEntity).update({ name: "nightly-eu" }, { lastTick: String(twoDaysAgo) });
    const without = await openDataSource(db, testEntities, {}, false); // no ReportTask here
    try {
      expect(ormqFor(without).registry.byKey.has("report_task")).toBe(false);
      await scheduler(without).pass();
      expect(await scheduledRuns(ds, "report_task")).toEqual([]);
      // catchUp "one": one task for the missed nights, by a worker without the class.
      await createSchedule({ dataSource: ds, name: "nightly-eu", type: ReportTask, cron: "0 2 * * *", timezone: "Europe/Paris", catchUp: "one", data: { label: "eu", priority: 5 } });
      await ds.getRepository(ScheduleEntity).update({ name: "nightly-eu" }, { lastTick: String(twoDaysAgo) });
      await scheduler(without).pass();
    } finally {
      await without.destroy();
    }
    const [tick] = await scheduledRuns(ds, "report_task");
    expect(new Date(tick).toLocaleTimeString("en-GB", { timeZone: "Europe/Paris" })).toBe("02:00:00");
    const summary = await processN(ReportTask, 1, { dataSource: ds, logger: memoryLogger().logger, scheduler: false });
    expect(summary.succeeded).toBe(1);
    const [done] = await ds.getRepository(ReportTask).find();
    expect(done).toMatchObject({ priority: 5, label: "eu", result: { label: "eu", scheduledFor: new Date(tick).toISOString() } });
  });

  it("ctx.scheduledFor is the tick on every attempt: a retry moves runAt, not the tick", async () => {
    await ds.getRepository(BaseTaskEntity).delete({ type: "report_task" });
    await createSchedule({ dataSource: ds, name: "retried", type: ReportTask, cron: "* * * * * *", data: { label: "fail-once" } });
    const tick = Math.floor(Date.now() / 1000) * 1000 - 1000;
    await ds.getRepository(ScheduleEntity).update({ name: "retried" }, { lastTick: String(tick - 1000) });
    await scheduler(ds).pass();
    await deleteSchedule("retried", { dataSource: ds });
    // One tick's task is kept (a second may have passed, and made two).
    const [written, ...later] = await ds.getRepository(ReportTask).find({ order: { id: "ASC" } });
    if (later.length > 0) await ds.getRepository(ReportTask).delete(later.map((t) => t.id));
    const enqueuedFor = written.runAt.toISOString();
    ReportTask.seen = [];
    const run = () => processN(ReportTask, 1, { dataSource: ds, logger: memoryLogger().logger, scheduler: false });
    expect(await run()).toMatchObject({ retried: 1 });
    // The retry moved runAt past the tick. Made due now (as if its 1.5 s had passed), it runs again.
    const [retried] = await ds.getRepository(ReportTask).find();
    expect(retried.runAt.getTime()).toBeGreaterThan(Date.parse(enqueuedFor));
    await ds.getRepository(ReportTask).update({ id: retried.id }, { runAt: new Date(Date.now() - 1) });
    expect(await run()).toMatchObject({ succeeded: 1 });
    const [done] = await ds.getRepository(ReportTask).find();
    expect(ReportTask.seen).toEqual([
      { attempt: 1, scheduledFor: enqueuedFor },
      { attempt: 2, scheduledFor: enqueuedFor },
    ]);
    expect(done.result).toEqual({ label: "fail-once", scheduledFor: enqueuedFor });
  });

  it("a paused schedule enqueues nothing; resumed, its ticks come again", async () => {
    await ds.getRepository(BaseTaskEntity).delete({ type: "report_task" });
    await createSchedule({ dataSource: ds, name: "paused", type: ReportTask, cron: "* * * * * *" });
    expect(await pauseSchedule("paused", { dataSource: ds })).toBe(true);
    await ds.getRepository(ScheduleEntity).update({ name: "paused" }, { lastTick: String(Date.now() - 3000) });
    await scheduler(ds).pass();
    expect(await scheduledRuns(ds, "report_task")).toEqual([]);
    expect((await listSchedules({ dataSource: ds, name: "paused" }))[0].paused).toBe(true);
    expect(await resumeSchedule("paused", { dataSource: ds })).toBe(true);
    await scheduler(ds).pass();
    expect((await scheduledRuns(ds, "report_task")).length).toBeGreaterThanOrEqual(3);
    expect(await pauseSchedule("no-such-schedule", { dataSource: ds })).toBe(false);
    await deleteSchedule("paused", { dataSource: ds });
  });

  it("a class with a bad static schedule stops the worker at start-up with a TaskDefinitionError naming it", async () => {
    const other = await createTestDb(dialect);
    const bad = await openDataSource(other, [...testEntities, BadSchedule]);
    try {
      const err = await processN(ReportTask, 1, { dataSource: bad, logger: memoryLogger().logger }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TaskDefinitionError);
      expect((err as Error).message).toMatch(/BadSchedule\.schedule: invalid timezone "Atlantis\/Central"/);
    } finally {
      await bad.destroy();
      await other.drop();
    }
  });

  it("bad run-time definitions are one InvalidOptionError naming what is wrong", async () => {
    const base = { dataSource: ds, name: "bad", type: ReportTask, cron: "* * * * *" };
    await expect(createSchedule({ ...base, cron: "99 * * * *" })).rejects.toThrow(/createSchedule: invalid cron "99/);
    await expect(createSchedule({ ...base, timezone: "Nowhere/Town" })).rejects.toThrow(/invalid timezone "Nowhere\/Town"/);
    // croner would read an empty time zone as the host's local time.
    await expect(createSchedule({ ...base, timezone: "" })).rejects.toThrow(/createSchedule.timezone: .*leave it out for UTC/);
    await expect(createSchedule({ ...base, timezone: "  " })).rejects.toThrow(InvalidOptionError);
    await expect(createSchedule({ ...base, type: "no_such_type" })).rejects.toThrow(/type "no_such_type" is not a task class/);
    await expect(createSchedule({ ...base, data: { nope: 1 } })).rejects.toThrow(/"nope" is not a column of ReportTask/);
    await expect(createSchedule({ ...base, name: "" })).rejects.toThrow(InvalidOptionError);
    await expect(createSchedule({ ...base, name: "every_second" })).rejects.toThrow(/name of a task class's own schedule/);
    expect((await listSchedules({ dataSource: ds })).map((s) => s.name)).not.toContain("bad");
  });

  it("data a tick could never write is refused at creation; what it can write ticks", async () => {
    const base = { dataSource: ds, type: ReportTask, cron: "* * * * * *" };
    // Longer than the column (varchar(64)): PostgreSQL and MariaDB (strict mode) refuse it; SQLite
    // does not enforce it. A NUL: only PostgreSQL's text refuses it.
    const cases = [
      { name: "nul", data: { label: "a\u0000b" }, refusedOn: ["postgres"] },
      { name: "too-long", data: { label: "x".repeat(65) }, refusedOn: ["postgres", "mariadb"] },
      { name: "fine", data: { label: "region-a" }, refusedOn: [] },
    ];
    for (const { name, data, refusedOn } of cases) {
      const made = createSchedule({ ...base, name, data });
      if (refusedOn.includes(dialect)) await expect(made).rejects.toThrow(new RegExp(`createSchedule.data: a task of ReportTask with this data cannot be written`));
      else await expect(made).resolves.toMatchObject({ name });
    }
    const stored = (await listSchedules({ dataSource: ds })).filter((s) => s.source === "api").map((s) => s.name);
    await ds.getRepository(ScheduleEntity).update({ source: "api" }, { lastTick: String(Date.now() - 2000) });
    const { logger, lines } = memoryLogger();
    await new Scheduler(ds, [], logger).pass();
    // Every stored schedule wrote its ticks, and nothing was logged as failing.
    const wrote = new Set((await ds.getRepository(ReportTask).find()).map((t) => t.scheduleName));
    expect([...wrote].sort()).toEqual([...stored].sort());
    expect(lines.filter((l) => l.level === "error" || l.level === "warn")).toEqual([]);
  });

  it("a clock that jumped an hour ahead and came back: the schedule ticks again from the database's now, and what it wrote ahead is removed, said once", async () => {
    await createSchedule({ dataSource: ds, name: "jumpy", type: ReportTask, cron: "* * * * * *" });
    const { logger, lines } = memoryLogger();
    // A DataSource of its own: the clock offset it measures while the clock is ahead is its own.
    const other = await openDataSource(db, [...testEntities, ...waitEntities, EverySecond], {}, false);
    try {
      const jumpy = new Scheduler(other, [], logger);
      // The clock's offset is measured before the jump, as a running worker's would have been.
      await ormqFor(other).clock.now();
      const realNow = Date.now.bind(Date);
      const jump = jest.spyOn(Date, "now").mockImplementation(() => realNow() + 3_600_000);
      try {
        await jumpy.pass();
    } finally {
      jump.mockRestore();
    }
    const ahead = await ds.getRepository(ReportTask).findBy({ scheduleName: "jumpy" });
    expect(ahead.length).toBeGreaterThan(0);
    expect(ahead.every((t) => t.runAt.getTime() > Date.now() + 3_000_000)).toBe(true);
    // The clock is back: the next ticks are written at their time, not an hour later.
    await until("a tick written by the clock that came back", async () => {
      await jumpy.pass();
      return (await ds.getRepository(ReportTask).findBy({ scheduleName: "jumpy" })).some((t) => t.runAt.getTime() <= Date.now());
    });
    const tasks = await ds.getRepository(ReportTask).findBy({ scheduleName: "jumpy" });
    expect(tasks.filter((t) => t.runAt.getTime() > Date.now() + 60_000)).toEqual([]);
    const warned = lines.filter((l) => l.level === "warn");
    expect(warned).toHaveLength(1);
    expect(warned[0].obj).toMatchObject({ schedule: "jumpy", removedTasks: ahead.length });
    } finally {
      await other.destroy();
    }
  });

  it("a schedule row damaged by hand is passed over and logged; the others still tick", async () => {
    await ds.getRepository(BaseTaskEntity).delete({ type: "report_task" });
    await createSchedule({ dataSource: ds, name: "good", type: ReportTask, cron: "* * * * * *" });
    await createSchedule({ dataSource: ds, name: "broken-cron", type: ReportTask, cron: "* * * * * *" });
    await createSchedule({ dataSource: ds, name: "broken-task", type: ReportTask, cron: "* * * * * *" });
    const back = String(Date.now() - 3000);
    const repo = ds.getRepository(ScheduleEntity);
    await repo.update({ name: "broken-cron" }, { cron: "not a cron", lastTick: back });
    await repo.update({ name: "broken-task" }, { task: '{"columns":["type","no_such_column"],"values":["report_task",1]}', lastTick: back });
    // An empty time zone would be the host's local time to croner.
    await createSchedule({ dataSource: ds, name: "broken-zone", type: ReportTask, cron: "* * * * * *" });
    await repo.update({ name: "broken-zone" }, { timezone: "", lastTick: back });
    await repo.update({ name: "good" }, { lastTick: back });
    const { logger, lines } = memoryLogger();
    await new Scheduler(ds, [], logger).pass();
    const names = (await ds.getRepository(ReportTask).find()).map((t) => t.scheduleName);
    expect(new Set(names)).toEqual(new Set(["good"]));
    const logged = lines.filter((l) => l.level === "error").map((l) => (l.obj as { schedule?: string }).schedule);
    expect(logged.sort()).toEqual(["broken-cron", "broken-task", "broken-zone"]);
    const broken = (await listSchedules({ dataSource: ds })).find((s) => s.name === "broken-cron")!;
    expect(broken.nextRun).toBeNull();
    for (const name of ["good", "broken-cron", "broken-task", "broken-zone"]) await deleteSchedule(name, { dataSource: ds });
  });

  it("generated definitions are stored or refused with one clear error, and a scheduler pass over them never throws", async () => {
    const names = new Set<string>();
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          name: fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom("ok-1", "every_second", "x".repeat(300))),
          cron: fc.oneof(fc.constantFrom("* * * * * *", "0 2 * * *", "*/5 * * * *", "@hourly", "0 0 30 2 *", "61 * * * *"), fc.string({ maxLength: 30 })),
          timezone: fc.option(fc.constantFrom("UTC", "Europe/Paris", "Nowhere/Town", "")),
          catchUp: fc.option(fc.constantFrom("skip", "one", "all", "some")),
          data: fc.option(
            fc.dictionary(
              fc.constantFrom("label", "priority", "queue", "status", "id", "nope"),
              fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: "binary", maxLength: 20 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null)),
            ),
          ),
        }),
        async ({ name, cron, timezone, catchUp, data }) => {
          try {
            await createSchedule({ dataSource: ds, name, type: ReportTask, cron, timezone: timezone ?? undefined, catchUp: (catchUp ?? undefined) as never, data: data ?? undefined });
            names.add(name);
          } catch (err) {
            expect(err).toBeInstanceOf(OrmqError);
            expect((err as Error).message.split("\n")).toHaveLength(1);
          }
        },
      ),
      { numRuns: 60 },
    );
    // Every stored one is due now: a pass writes what it can and logs the rest, and does not throw.
    await ds.getRepository(ScheduleEntity).update({ source: "api" }, { lastTick: String(Date.now() - 2000) });
    const { logger, lines } = memoryLogger();
    await expect(new Scheduler(ds, [], logger).pass()).resolves.toBeGreaterThan(0);
    const stored = (await listSchedules({ dataSource: ds })).filter((s) => s.source === "api");
    expect(stored.length).toBe(names.size);
    // What was stored can be written: every one of them ticked, and nothing failed.
    expect(lines.filter((l) => l.level === "error")).toEqual([]);
    const wrote = new Set((await ds.getRepository(ReportTask).find()).map((t) => t.scheduleName));
    expect(stored.filter((s) => s.cron === "* * * * * *" && !wrote.has(s.name)).map((s) => s.name)).toEqual([]);
  });
});
