import { setTimeout as sleep } from "node:timers/promises";
import type { DataSource } from "typeorm";
import { processForever, type ProcessSummary } from "../src";
import { GateTask, testEntities } from "./fixtures/tasks";
import { WITH_MARIADB, memoryLogger, useTestDatabase } from "./support/db";
import { until } from "./support/helpers";

/**
 * A worker that cannot renew its leases cannot know whether it still holds its buffered tasks:
 * it starts none of them until a heartbeat says which are still its own, and drops those that
 * were rescued meanwhile.
 */
describe.each(WITH_MARIADB)("lease fencing on %s", (dialect) => {
  let ds: DataSource;
  useTestDatabase(dialect, (opened) => ({ ds } = opened), testEntities);
  beforeEach(async () => {
    await ds.query(`DELETE FROM ormq_tasks`);
    await ds.query(`DELETE FROM ormq_task_events`);
    await ds.query(`DELETE FROM ormq_workers`);
    GateTask.reset();
  });

  function startWorker(options: Record<string, unknown>) {
    const controller = new AbortController();
    const log = memoryLogger();
    const done: Promise<ProcessSummary> = processForever(GateTask, {
      dataSource: ds,
      logger: log.logger,
      signal: controller.signal,
      concurrency: 1,
      prefetch: 2,
      rescueIntervalMs: 600_000, // no rescue of its own in these tests
      ...options,
    });
    return { done, log, stop: () => (controller.abort(), done) };
  }
  const rows = async () =>
    (await ds.query(`SELECT id, status, locked_by, attempts FROM ormq_tasks ORDER BY id`)) as { id: unknown; status: string; locked_by: string | null; attempts: unknown }[];

  it("drops buffered tasks that a heartbeat finds rescued and claimed elsewhere, and never starts them", async () => {
    await ds.getRepository(GateTask).save(Array.from({ length: 3 }, () => GateTask.create({})));
    const worker = startWorker({ heartbeatIntervalMs: 100, leaseMs: 60_000 });
    try {
      await until("one running, two buffered", async () => GateTask.started.length === 1 && (await rows()).filter((r) => r.status === "running").length === 3);
      const buffered = (await rows()).filter((r) => !GateTask.started.includes(String(r.id))).map((r) => String(r.id));
      // What a rescue and another worker's claim leave behind.
      await ds.query(`UPDATE ormq_tasks SET locked_by = 'elsewhere', attempts = attempts + 1 WHERE id IN (${buffered.join(", ")})`);
      await until("the heartbeat noticed", () => worker.log.lines.some((l) => /rescued while this worker could not renew/.test(l.msg ?? "")));
      GateTask.release!();
      await until("the running task succeeded", async () => (await rows()).some((r) => r.status === "succeeded"));
    } finally {
      GateTask.release!();
      await worker.stop();
    }
    expect(GateTask.started).toHaveLength(1);
    const after = await rows();
    for (const id of buffered(after)) expect(after.find((r) => String(r.id) === id)).toMatchObject({ status: "running", locked_by: "elsewhere" });
    function buffered(list: typeof after) {
      return list.filter((r) => !GateTask.started.includes(String(r.id))).map((r) => String(r.id));
    }
  });

  if (dialect === "postgres") {
    it("starts nothing once its leases went a lease period unrenewed, and starts again when a heartbeat gets through", async () => {
      await ds.getRepository(GateTask).save(Array.from({ length: 3 }, () => GateTask.create({})));
      const LEASE = 1_500;
      const worker = startWorker({ heartbeatIntervalMs: 200, leaseMs: LEASE });
      // Holds the workers' table locked: the heartbeat (which writes the worker's row with its
      // leases, and takes its table locks before touching any row) waits, as one would on an
      // unreachable database; claims and completions do not touch that table.
      const blocker = ds.createQueryRunner();
      try {
        await until("one running, two buffered", async () => GateTask.started.length === 1 && (await rows()).filter((r) => r.status === "running").length === 3);
        await blocker.startTransaction();
        await blocker.query(`LOCK TABLE ormq_workers IN ACCESS EXCLUSIVE MODE`);
        await sleep(LEASE); // a lease period passes with no heartbeat through
        GateTask.release!();
        await until("the running task succeeded", async () => (await rows()).some((r) => r.status === "succeeded"));
        await until("the worker held back", () => worker.log.lines.some((l) => /starting nothing until a heartbeat/.test(l.msg ?? "")));
        expect(GateTask.started).toHaveLength(1);
        await blocker.commitTransaction();
        await until("all three succeeded", async () => (await rows()).every((r) => r.status === "succeeded"));
        expect(GateTask.started).toHaveLength(3);
        expect(worker.log.lines.some((l) => /leases renewed; starting tasks again/.test(l.msg ?? ""))).toBe(true);
      } finally {
        if (blocker.isTransactionActive) await blocker.rollbackTransaction();
        await blocker.release();
        GateTask.release!();
        await worker.stop();
      }
    });
  }
});
