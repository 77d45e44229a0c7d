/**
 * Maintenance by one worker at a time: the lease of each job (dialect/maintenanceLease.ts) on
 * both databases, hostile values in its row, and two workers of which one rescues while the other
 * idles, until the first stops and the second takes over.
 */
import fc from "fast-check";
import type { DataSource } from "typeorm";
import { BaseTaskEntity, ormqFor, processForever, TaskFailedError, waitForResult, WorkerLostError } from "../src";
import { rescueExpiredTasks } from "../src/admin";
import { MetaEntity } from "../entities/ControlEntity";
import { holdLease, leaseHolder, parseLease, releaseLease } from "../src/dialect/maintenanceLease";
import { RecordRun, testEntities } from "./fixtures/tasks";
import { WITH_MARIADB, memoryLogger, useTestDatabase } from "./support/db";
import { until } from "./support/helpers";

describe.each(WITH_MARIADB)("maintenance leases on %s", (dialect) => {
  let ds: DataSource;
  useTestDatabase(dialect, (o) => (ds = o.ds), testEntities);
  const meta = () => ds.getRepository(MetaEntity);
  beforeEach(() => meta().createQueryBuilder().delete().where(`${ds.driver.escape("key")} LIKE 'lease:%'`).execute());

  it("one holder at a time: taken, renewed, refused to another until it expires or is released", async () => {
    const [a, b] = [leaseHolder("worker-a"), leaseHolder("worker-b")];
    const m = ds.manager;
    expect(await holdLease(m, "rescue", a, 1_000, 500)).toBe(true);
    expect(await holdLease(m, "rescue", b, 1_100, 500)).toBe(false);
    expect(await holdLease(m, "rescue", a, 1_200, 500)).toBe(true); // renewed: until 1,700
    expect(await holdLease(m, "rescue", b, 1_600, 500)).toBe(false);
    expect(await holdLease(m, "rescue", b, 1_701, 500)).toBe(true); // a's lease ran out
    expect(await holdLease(m, "rescue", a, 1_800, 500)).toBe(false);
    await releaseLease(m, "rescue", a); // not a's any more: nothing changes
    expect(await holdLease(m, "rescue", a, 1_900, 500)).toBe(false);
    await releaseLease(m, "rescue", b);
    expect(await holdLease(m, "rescue", a, 1_901, 500)).toBe(true); // released: taken at once
    // Each job has its own lease.
    expect(await holdLease(m, "prune", b, 1_901, 500)).toBe(true);
    expect(parseLease((await meta().findOneByOrFail({ key: "lease:prune" })).value)).toEqual({ until: 2_401, holder: b });
  });

  it("two takers at once: exactly one wins, every time", async () => {
    for (let round = 0; round < 10; round++) {
      await meta().createQueryBuilder().delete().where(`${ds.driver.escape("key")} LIKE 'lease:%'`).execute();
      const holders = Array.from({ length: 4 }, (_, i) => leaseHolder(`w-${round}-${i}`));
      const won = await Promise.all(holders.map((h) => holdLease(ds.manager, "schedule", h, 5_000, 1_000)));
      expect(won.filter(Boolean)).toHaveLength(1);
    }
  });

  it("a row whose value is not a lease counts as expired and is taken over", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 200 }), async (garbage) => {
        await meta().save({ key: "lease:rescue", value: garbage.replace(/\u0000/g, "") });
        const parsed = parseLease(garbage.replace(/\u0000/g, ""));
        const me = leaseHolder("taker");
        const now = 10_000;
        const expected = parsed === null || parsed.holder === me || parsed.until <= now;
        expect(await holdLease(ds.manager, "rescue", me, now, 1_000)).toBe(expected);
      }),
      { numRuns: 50 },
    );
  });

  it("of two workers, one rescues while the other idles; when it stops, the other takes over", async () => {
    // Neither claims these tasks (another queue): they only rescue.
    const fast = { leaseMs: 400, heartbeatIntervalMs: 100, rescueIntervalMs: 50, pollIntervalMs: 50, scheduler: false, queues: ["elsewhere"] };
    const rescuedBy: string[] = [];
    const started: string[] = [];
    const offRescued = ormqFor(ds).on("task:rescued", (e) => rescuedBy.push(e.rescuedBy));
    const offStarted = ormqFor(ds).on("worker:started", (e) => started.push(e.workerId));
    // Tasks of a worker that vanished: running, their lease long over.
    const strand = async (n: number) => {
      const tasks = await ds.getRepository(RecordRun).save(Array.from({ length: n }, () => RecordRun.create({ label: "stranded" })));
      await ds
        .createQueryBuilder()
        .update(BaseTaskEntity)
        .set({ status: "running", lockedBy: "gone", lockedUntil: new Date(1), attempts: 1 })
        .whereInIds(tasks.map((t) => t.id))
        .execute();
      return tasks.map((t) => t.id);
    };
    const rescued = async (ids: string[]) => (await ds.getRepository(RecordRun).findBy(ids.map((id) => ({ id })))).every((t) => t.status === "pending");
    const first = new AbortController();
    const second = new AbortController();
    const run = (c: AbortController) => processForever(RecordRun, { dataSource: ds, logger: memoryLogger().logger, signal: c.signal, ...fast });
    const workers: Promise<unknown>[] = [];
    try {
      workers.push(run(first));
      await until("the first worker starts", () => started.length === 1);
      const early = await strand(3);
      await until("the first worker rescues", () => rescued(early));
      workers.push(run(second));
      await until("the second worker starts", () => started.length === 2);
      await new Promise((r) => setTimeout(r, 300)); // six rounds of each
      const later = await strand(3);
      await until("the next ones are rescued", () => rescued(later));
      expect(new Set(rescuedBy)).toEqual(new Set([started[0]])); // the second worker idled
      first.abort();
      await workers[0];
      rescuedBy.length = 0;
      const afterStop = await strand(2);
      // Released at the first worker's stop: taken within a few rounds, not after a lease.
      await until("the second worker takes over", () => rescued(afterStop), 2_000);
      expect(new Set(rescuedBy)).toEqual(new Set([started[1]]));
    } finally {
      first.abort();
      second.abort();
      await Promise.all(workers);
      offRescued();
      offStarted();
    }
  });

  it("a task whose worker was lost on its last attempt fails, and its wait's cause is a WorkerLostError", async () => {
    const [task] = await ds.getRepository(RecordRun).save([RecordRun.create({ label: "lost", maxAttempts: 1 })]);
    await ds
      .createQueryBuilder()
      .update(BaseTaskEntity)
      .set({ status: "running", lockedBy: "gone", lockedUntil: new Date(1), attempts: 1 })
      .whereInIds([task.id])
      .execute();
    expect(await rescueExpiredTasks({ dataSource: ds, logger: memoryLogger().logger })).toEqual([{ id: task.id, status: "failed" }]);
    const err = await waitForResult(task.id, { dataSource: ds, timeoutMs: 5_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskFailedError);
    expect((err as TaskFailedError).cause).toBeInstanceOf(WorkerLostError);
    expect((err as TaskFailedError).cause).toMatchObject({ name: "WorkerLostError" });
  });
});
