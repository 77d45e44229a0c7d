/**
 * retryFailed and deleteTasks by filter, on both databases: type, queue, time and a task class's
 * own columns (checked against its metadata); bad filters are one InvalidOptionError naming what
 * is wrong, and generated filters never raise anything else.
 */
import fc from "fast-check";
import type { DataSource } from "typeorm";
import { BaseTaskEntity, enqueueMany, InvalidOptionError, processN } from "../src";
import {
  countUnfinished,
  createSchedule,
  deleteSchedule,
  deleteTasks,
  listSchedules,
  listTaskPage,
  listTasks,
  pauseQueue,
  pauseSchedule,
  pauseType,
  resumeQueue,
  resumeSchedule,
  resumeType,
  retryFailed,
  setQueueLimits,
} from "../src/admin";
import { checkTaskFilter, parseFilterDate } from "../src/admin/taskFilter";
import { filteredIds } from "../src/dialect/taskWrites";
import { WaitedTask, waitEntities } from "./fixtures/schedules";
import { testEntities } from "./fixtures/tasks";
import { WITH_MARIADB, memoryLogger, useTestDatabase } from "./support/db";

describe.each(WITH_MARIADB)("admin filters on %s", (dialect) => {
  let ds: DataSource;
  useTestDatabase(dialect, (o) => (ds = o.ds), [...testEntities, ...waitEntities]);
  const statusOf = async (n: number) => (await ds.getRepository(WaitedTask).findOneByOrFail({ n })).status;

  beforeAll(async () => {
    await enqueueMany(Array.from({ length: 10 }, (_, n) => WaitedTask.create({ mode: "fail", n })), { dataSource: ds });
    const summary = await processN(WaitedTask, 10, { dataSource: ds, logger: memoryLogger().logger, scheduler: false });
    expect(summary.failed).toBe(10);
  });

  it("retryFailed requeues the failed tasks whose column is in a range, and only those", async () => {
    expect(await retryFailed({ dataSource: ds, type: "waited_task", fields: { n: { min: 3, max: 5 } } })).toEqual({ requeued: 3, duplicates: 0 });
    for (let n = 0; n < 10; n++) expect([n, await statusOf(n)]).toEqual([n, n >= 3 && n <= 5 ? "pending" : "failed"]);
    // And by value, with a time range that holds all of them.
    const since = new Date(Date.now() - 3_600_000);
    expect(await retryFailed({ dataSource: ds, type: "waited_task", fields: { n: 7 }, createdFrom: since })).toEqual({ requeued: 1, duplicates: 0 });
    expect(await retryFailed({ dataSource: ds, type: "waited_task", createdBefore: since })).toEqual({ requeued: 0, duplicates: 0 });
  });

  it("deleteTasks deletes finished tasks by filter, never unfinished ones", async () => {
    expect(await deleteTasks({ dataSource: ds, status: "failed", type: "waited_task", fields: { n: 9 } })).toEqual({ deleted: 1, blocked: [] });
    expect(await ds.getRepository(WaitedTask).countBy({ n: 9 })).toBe(0);
    // n = 3..5 and 7 are pending: a filter over every n deletes only the finished ones.
    const before = await ds.getRepository(WaitedTask).countBy({ status: "pending" });
    const result = await deleteTasks({ dataSource: ds, type: "waited_task", fields: { n: { min: 0, max: 8 } } });
    expect(result.deleted).toBe(5); // 0, 1, 2, 6, 8
    expect(await ds.getRepository(WaitedTask).countBy({ status: "pending" })).toBe(before);
    await expect(deleteTasks({ dataSource: ds, status: "pending" })).rejects.toThrow(/only finished tasks are deleted.*"pending"/);
  });

  it("refuses bad filters with one error naming them", async () => {
    await expect(retryFailed({ dataSource: ds, type: "waited_task", fields: { nope: 1 } })).rejects.toThrow(/"nope" is not a column of WaitedTask/);
    await expect(retryFailed({ dataSource: ds, fields: { n: 1 } })).rejects.toThrow(/needs the type of a task class/);
    await expect(retryFailed({ dataSource: ds, type: "waited_task", fields: { status: "x" } })).rejects.toThrow(/"status" is not a column of WaitedTask/);
    await expect(retryFailed({ dataSource: ds, status: "succeeded" as never })).rejects.toThrow(/only failed tasks are retried/);
    await expect(deleteTasks({ dataSource: ds, type: "waited_task", fields: { n: { between: [1, 2] } as never } })).rejects.toThrow(/a range is \{ min\?, max\? \}/);
    await expect(deleteTasks({ dataSource: ds, status: "failed", createdFrom: new Date("nope") })).rejects.toThrow(InvalidOptionError);
    // A value the column's type cannot hold is named here, not a database error later.
    await expect(retryFailed({ dataSource: ds, type: "waited_task", fields: { n: "abc" } })).rejects.toThrow(/WaitedTask\.n: the value must be a number \(a numeric column\), got "abc"/);
    await expect(retryFailed({ dataSource: ds, type: "waited_task", fields: { n: { min: "x" } } })).rejects.toThrow(/min must be a number/);
    await expect(retryFailed({ dataSource: ds, type: "waited_task", fields: { n: 1.5 } })).rejects.toThrow(/must be an integer from -2147483647 to 2147483647/);
    await expect(retryFailed({ dataSource: ds, type: "waited_task", fields: { n: 1e300 } })).rejects.toThrow(/must be an integer/);
    expect(await retryFailed({ dataSource: ds, type: "waited_task", fields: { n: "123456" } })).toEqual({ requeued: 0, duplicates: 0 });
  });

  it("any generated filter reads or is refused with an InvalidOptionError, never another error", async () => {
    const value = fc.oneof(fc.string({ maxLength: 50 }), fc.integer(), fc.double(), fc.constantFrom(1e300, -(2 ** 40), 1.5, "7", " 8 ", "1e3"), fc.boolean(), fc.constant(null), fc.record({ min: fc.integer(), max: fc.string({ maxLength: 5 }) }, { requiredKeys: [] }), fc.anything());
    await fc.assert(
      fc.asyncProperty(
        fc.record(
          {
            status: fc.oneof(fc.constant("failed"), fc.constantFrom("failed", "pending", "done"), fc.array(fc.constantFrom("failed", "succeeded", "x"))),
            type: fc.oneof(fc.constant("waited_task"), fc.constantFrom("waited_task", "send_email", ""), fc.string({ maxLength: 10 })),
            queue: fc.oneof(fc.constant("default"), fc.string({ maxLength: 10 })),
            fields: fc.dictionary(fc.constantFrom("n", "mode", "nope", "id", "__proto__"), value, { maxKeys: 3 }),
          },
          { requiredKeys: [] },
        ),
        async (filter) => {
          try {
            await filteredIds(ds.manager, checkTaskFilter(ds, filter as never, "test"), "0", 10);
          } catch (err) {
            expect(err).toBeInstanceOf(InvalidOptionError);
          }
        },
      ),
      { numRuns: 300 },
    );
    expect(await ds.getRepository(BaseTaskEntity).count()).toBeGreaterThan(0);
  });
});

/**
 * Every admin call that takes text from its caller and compares it in SQL, with `value` in its
 * text argument, and the field its error must name.
 */
function textCalls(ds: DataSource, value: string): [string, () => Promise<unknown>][] {
  const dataSource = ds;
  return [
    ["listTasks: type", () => listTasks({ dataSource, type: value })],
    ["listTasks: queue", () => listTasks({ dataSource, queue: value })],
    ["listTasks: SendEmail.to", () => listTasks({ dataSource, type: "send_email", fields: { to: value } })],
    ["listTasks: SendEmail.to", () => listTasks({ dataSource, type: "send_email", fields: { to: { min: value } } })],
    ["listTasks: type", () => listTaskPage({ dataSource, type: value })],
    ["retryFailed: type", () => retryFailed({ dataSource, type: value })],
    ["deleteTasks: type", () => deleteTasks({ dataSource, type: value })],
    ["pauseType(type)", () => pauseType(value, { dataSource })],
    ["resumeType(type)", () => resumeType(value, { dataSource })],
    ["pauseQueue(queue)", () => pauseQueue(value, { dataSource })],
    ["resumeQueue(queue)", () => resumeQueue(value, { dataSource })],
    ["setQueueLimits(queue)", () => setQueueLimits(value, { concurrency: 2 }, { dataSource })],
    ["pauseSchedule(name)", () => pauseSchedule(value, { dataSource })],
    ["resumeSchedule(name)", () => resumeSchedule(value, { dataSource })],
    ["deleteSchedule(name)", () => deleteSchedule(value, { dataSource })],
    ["listSchedules: name", () => listSchedules({ dataSource, name: value })],
    ["createSchedule: name", () => createSchedule({ dataSource, name: value, type: WaitedTask, cron: "0 2 * * *", data: { mode: "return" } })],
    ["countUnfinished: types", () => countUnfinished({ dataSource, types: ["waited_task", value] })],
    ["countUnfinished: queues", () => countUnfinished({ dataSource, queues: [value] })],
  ];
}

describe.each(WITH_MARIADB)("text the database cannot compare, on %s", (dialect) => {
  let ds: DataSource;
  useTestDatabase(dialect, (o) => (ds = o.ds), [...testEntities, ...waitEntities]);

  it("is refused by every admin call, with an InvalidOptionError naming the field and the value", async () => {
    // NUL: PostgreSQL's text cannot hold it (the query fails). A lone surrogate: the driver sends
    // U+FFFD in its place, so the query would compare another value than the one given.
    for (const value of ["a\u0000b", "\u0000", "\ud800", "x\udc00y"]) {
      for (const [field, call] of textCalls(ds, value)) {
        let thrown: unknown;
        await call().then(
          () => (thrown = "no error"),
          (err: unknown) => (thrown = err),
        );
        expect([field, value, thrown]).toEqual([field, value, expect.any(InvalidOptionError)]);
        const message = (thrown as Error).message;
        expect([field, message.startsWith(field), message.includes(JSON.stringify(value))]).toEqual([field, true, true]);
      }
    }
  });

  it("any string, NULs and lone surrogates included, is read or refused with an InvalidOptionError", async () => {
    const text = fc.oneof(fc.string({ unit: "binary", maxLength: 12 }), fc.string({ unit: "binary-ascii", maxLength: 12 }), fc.constantFrom("waited_task", "default", "\u0000", "\ud83d", "\ude00", "\ud83d\ude00"));
    const calls = textCalls(ds, "").length;
    await fc.assert(
      fc.asyncProperty(text, fc.nat(calls - 1), async (value, which) => {
        const [field, call] = textCalls(ds, value)[which];
        try {
          await call();
        } catch (err) {
          expect([field, value, err]).toEqual([field, value, expect.any(InvalidOptionError)]);
        }
      }),
      { numRuns: 400 },
    );
  });
});

describe("a creation-time bound from the command line or the dashboard's form", () => {
  it("is an ISO date or time, or one InvalidOptionError naming the field, whatever the text", () => {
    expect(parseFilterDate("2026-11-30", "--created-from")).toEqual(new Date("2026-11-30"));
    expect(parseFilterDate("2026-11-30T08:00", "created from")).toEqual(new Date("2026-11-30T08:00"));
    expect(parseFilterDate("", "created from")).toBeUndefined();
    expect(() => parseFilterDate("yesterday", "--created-before")).toThrow(/^--created-before takes an ISO date or time .*got "yesterday"$/);
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.date({ noInvalidDate: false }).map((d) => (Number.isNaN(d.getTime()) ? "x" : d.toISOString()))), (raw) => {
        let parsed: Date | undefined;
        try {
          parsed = parseFilterDate(raw, "created from");
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidOptionError);
          expect((err as Error).message.startsWith("created from takes an ISO date")).toBe(true);
          return;
        }
        if (raw === "") expect(parsed).toBeUndefined();
        else expect(Number.isNaN(parsed!.getTime())).toBe(false);
      }),
    );
  });
});
