/**
 * The client of a DataSource (`ormqFor`): one per DataSource, its typed events, and its middleware
 * around enqueue and around run, on both databases.
 */
import type { DataSource } from "typeorm";
import fc from "fast-check";
import { enqueueMany, ormqFor, processN, TaskFailedError, type OrmqEventMap, type OrmqEventName } from "../../src";
import { MiddlewareStack } from "../../src/client/middleware";
import { RecordRun, ScriptedTask, SendEmail, testEntities } from "../fixtures/tasks";
import { WITH_MARIADB, memoryLogger, openDataSource, useTestDatabase, type TestDb } from "../support/db";

type Seen = { event: OrmqEventName; payload: OrmqEventMap[OrmqEventName] };

/** Subscribes to every event of `ds`'s client; returns what it saw and the unsubscribe. */
function record(ds: DataSource, events: OrmqEventName[]): { seen: Seen[]; off: () => void } {
  const seen: Seen[] = [];
  const offs = events.map((event) => ormqFor(ds).on(event, (payload) => seen.push({ event, payload })));
  return { seen, off: () => offs.forEach((off) => off()) };
}

const ALL: OrmqEventName[] = [
  "task:enqueued",
  "task:claimed",
  "task:started",
  "task:finished",
  "task:succeeded",
  "task:failed",
  "task:retried",
  "task:snoozed",
  "task:cancelled",
  "task:rescued",
  "worker:started",
  "worker:stopped",
];

describe.each(WITH_MARIADB)("the client on %s", (dialect) => {
  let ds: DataSource;
  let db: TestDb;
  useTestDatabase(dialect, (o) => ((ds = o.ds), (db = o.db)), testEntities);
  // Each DataSource opened takes the entity classes (`Task.create().save()`): bind them to this one.
  beforeEach(() => {
    for (const m of ds.entityMetadatas) (m.target as { useDataSource?: (d: DataSource) => void }).useDataSource?.(ds);
  });
  const run = (cls: typeof RecordRun | typeof ScriptedTask | typeof SendEmail, n: number, dataSource = ds) =>
    processN(cls, n, { dataSource, logger: memoryLogger().logger, pollIntervalMs: 50, scheduler: false });

  it("is one object per DataSource, and another for another DataSource on the same database", async () => {
    const other = await openDataSource(db, testEntities, {}, false);
    try {
      expect(ormqFor(ds)).toBe(ormqFor(ds));
      expect(ormqFor(other)).not.toBe(ormqFor(ds));
      expect(ormqFor(other).registry).not.toBe(ormqFor(ds).registry);
      expect(ormqFor(other).origin).not.toBe(ormqFor(ds).origin);
      expect(ormqFor(ds).registry.byKey.has("record_run")).toBe(true);
      expect(() => ormqFor({} as DataSource)).toThrow(/expected a TypeORM DataSource/);
    } finally {
      await other.destroy();
    }
  });

  it("tells enqueued, claimed, started, the outcome and the worker's start and stop, in order", async () => {
    const { seen, off } = record(ds, ALL);
    try {
      const saved = await RecordRun.create({ label: "one" }).save();
      const [many] = await enqueueMany([RecordRun.create({ label: "two" })], { dataSource: ds });
      const summary = await run(RecordRun, 2);
      expect(summary.succeeded).toBe(2);
      const about = (id: string) => seen.filter((s) => (s.payload as { taskId?: string }).taskId === id).map((s) => s.event);
      for (const id of [saved.id, many]) {
        expect(about(id)).toEqual(["task:enqueued", "task:claimed", "task:started", "task:finished", "task:succeeded"]);
      }
      const finished = seen.find((s) => s.event === "task:succeeded" && (s.payload as { taskId: string }).taskId === saved.id)!.payload;
      expect(finished).toMatchObject({ taskId: saved.id, type: "record_run", queue: "records", attempt: 1, outcome: "succeeded" });
      expect((finished as { durationMs: number }).durationMs).toBeGreaterThanOrEqual(0);
      const workers = seen.filter((s) => s.event.startsWith("worker:"));
      expect(workers.map((w) => w.event)).toEqual(["worker:started", "worker:stopped"]);
      expect(workers[1].payload).toMatchObject({ processed: 2, workerId: (workers[0].payload as { workerId: string }).workerId });
      expect(seen.findIndex((s) => s.event === "worker:started")).toBeLessThan(seen.findIndex((s) => s.event === "task:started"));
    } finally {
      off();
    }
  });

  it("tells retried, failed and cancelled; and a listener that throws stops nothing", async () => {
    const { seen, off } = record(ds, ["task:retried", "task:failed", "task:cancelled", "task:finished"]);
    const offThrowing = ormqFor(ds).on("task:finished", () => {
      throw new Error("a broken observer");
    });
    // The throw is logged, here into memory rather than onto the test's output.
    const events = ormqFor(ds).events;
    const before = events.logger;
    const memory = memoryLogger();
    events.logger = memory.logger;
    try {
      const failing = await ScriptedTask.create({ script: "fail" }).save();
      const cancelling = await ScriptedTask.create({ script: "cancel" }).save();
      // ScriptedTask retries once (maxAttempts 2, no delay): three attempts in all.
      const summary = await run(ScriptedTask, 3);
      expect(summary).toMatchObject({ processed: 3, retried: 1, failed: 1, cancelled: 1 });
      const of = (id: string) => seen.filter((s) => (s.payload as { taskId: string }).taskId === id && s.event !== "task:finished").map((s) => s.event);
      expect(of(failing.id)).toEqual(["task:retried", "task:failed"]);
      expect(of(cancelling.id)).toEqual(["task:cancelled"]);
      expect(seen.filter((s) => s.event === "task:finished")).toHaveLength(3);
      expect(memory.lines.filter((l) => l.msg === "an ormq event listener threw; it was skipped" && (l.obj as { event?: string }).event === "task:finished")).toHaveLength(3);
    } finally {
      events.logger = before;
      off();
      offThrowing();
    }
  });

  it("runs enqueue middleware outermost first around ormq's defaults, for save() and enqueueMany; a throw writes nothing", async () => {
    const calls: string[] = [];
    const client = ormqFor(ds);
    const mw = (name: string) => ({
      async enqueue(task: { queue?: string; label?: string | null }, next: () => Promise<void>) {
        calls.push(`${name}:before:${task.queue ?? "unset"}`);
        if (name === "outer" && (task as { label?: string }).label === "refuse") throw new RangeError("refused by middleware");
        if (name === "inner") (task as { label?: string }).label = `${(task as { label?: string }).label}+inner`;
        await next();
        calls.push(`${name}:after:${task.queue}`);
      },
    });
    const removeAll = [client.use(mw("outer")), client.use(mw("inner"))];
    try {
      const saved = await RecordRun.create({ label: "a" }).save();
      expect(calls).toEqual(["outer:before:unset", "inner:before:unset", "inner:after:records", "outer:after:records"]);
      expect((await ds.getRepository(RecordRun).findOneByOrFail({ id: saved.id })).label).toBe("a+inner");
      calls.length = 0;
      const [id] = await enqueueMany([RecordRun.create({ label: "b" })], { dataSource: ds });
      expect(calls).toEqual(["outer:before:unset", "inner:before:unset", "inner:after:records", "outer:after:records"]);
      expect((await ds.getRepository(RecordRun).findOneByOrFail({ id })).label).toBe("b+inner");
      const before = await ds.getRepository(RecordRun).count();
      await expect(RecordRun.create({ label: "refuse" }).save()).rejects.toThrow(new RangeError("refused by middleware"));
      await expect(enqueueMany([RecordRun.create({ label: "refuse" })], { dataSource: ds })).rejects.toThrow(RangeError);
      expect(await ds.getRepository(RecordRun).count()).toBe(before);
    } finally {
      removeAll.forEach((remove) => remove());
      await ds.getRepository(RecordRun).createQueryBuilder().delete().execute();
    }
  });

  it("runs run middleware around run(): it sees and may change the result, and its throw is the attempt's error", async () => {
    const client = ormqFor(ds);
    const order: string[] = [];
    const removeOuter = client.use({
      async run(task, ctx, next) {
        order.push(`outer:${ctx.attempt}`);
        const result = await next();
        return { wrapped: result, by: "outer" };
      },
    });
    const removeInner = client.use({
      async run(task, _ctx, next) {
        order.push("inner");
        if ((task as SendEmail).to === "boom") throw new TypeError("middleware refused to run it");
        return next();
      },
    });
    try {
      // A task that does not commit its result itself (ctx.transaction), so the middleware's stands.
      const ok = await SendEmail.create({ to: "fine" }).save();
      const boom = await SendEmail.create({ to: "boom", maxAttempts: 1 }).save();
      const summary = await run(SendEmail, 2);
      expect(summary).toMatchObject({ succeeded: 1, failed: 1 });
      expect(order.sort()).toEqual(["inner", "inner", "outer:1", "outer:1"]);
      await expect(ok.waitForResult({ timeoutMs: 10_000 })).resolves.toMatchObject({ result: { wrapped: { sent: "fine" }, by: "outer" } });
      const err = await boom.waitForResult({ timeoutMs: 10_000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TaskFailedError);
      expect((err as TaskFailedError).cause).toMatchObject({ name: "TypeError", message: "middleware refused to run it" });
    } finally {
      removeOuter();
      removeInner();
      await ds.getRepository(RecordRun).createQueryBuilder().delete().execute();
    }
  });

  it("refuses bad middleware with a clear error, and a next() called twice", async () => {
    const client = ormqFor(ds);
    expect(() => client.use({} as never)).toThrow(/give enqueue\(\), run\(\) or both/);
    expect(() => client.use({ run: 42 } as never)).toThrow(/run must be a function/);
    expect(() => client.use(null as never)).toThrow(/expected an object/);
    expect(() => client.on("task:started", "nope" as never)).toThrow(/listener must be a function/);
    const remove = client.use({
      async enqueue(_task, next) {
        await next();
        await next();
      },
    });
    try {
      await expect(RecordRun.create({ label: "twice" }).save()).rejects.toThrow(/next\(\) twice/);
    } finally {
      remove();
    }
    // Removed: saves go through again.
    await expect(RecordRun.create({ label: "once" }).save()).resolves.toMatchObject({ label: "once" });
  });
});

describe("middleware order (property)", () => {
  it("nests any number of middleware: befores in order, afters reversed, the inner call once", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.boolean(), { maxLength: 8 }), async (throwsInner) => {
        const stack = new MiddlewareStack();
        const log: string[] = [];
        throwsInner.forEach((_, i) =>
          stack.add({
            async run(_t, _c, next) {
              log.push(`b${i}`);
              try {
                return await next();
              } finally {
                log.push(`a${i}`);
              }
            },
          }),
        );
        // The inner call throws when the last flag says so: every after-step still runs, in reverse.
        const fails = throwsInner.at(-1) === true;
        let inner = 0;
        const outcome = await stack
          .run({} as never, {} as never, () => {
            inner++;
            if (fails) throw new Error("inner");
            return "x";
          })
          .then((r) => ({ ok: r }), (e: Error) => ({ err: e.message }));
        const n = throwsInner.length;
        expect(outcome).toEqual(fails ? { err: "inner" } : { ok: "x" });
        expect(inner).toBe(1);
        expect(log).toEqual([...Array.from({ length: n }, (_, i) => `b${i}`), ...Array.from({ length: n }, (_, i) => `a${n - 1 - i}`)]);
      }),
    );
  });
});
