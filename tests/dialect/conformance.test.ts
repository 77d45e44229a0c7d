/**
 * The dialect conformance suite: the `Dialect` contract (the worker's statements) and the
 * statement modules beside it (taskWrites, bulkInsert), called directly on both databases. A new
 * dialect must pass it as it is; a capability a dialect lacks is skipped by its name.
 */
import { ChildEntity, Column, type DataSource } from "typeorm";
import { BaseTaskEntity } from "../../src";
import { pauseQueue, pauseType, setQueueLimits } from "../../src/admin";
import { contractOf, createDialect, tablesOf, type Completion, type Dialect } from "../../src/dialect";
import { bulkInsert } from "../../src/dialect/bulkInsert";
import { cancelPending, deleteFinished, deleteOrphanEvents, readTaskState, requestCancel, requeueFailed } from "../../src/dialect/taskWrites";
import { memoryLogger, type TestDb, useTestDatabase, WITH_MARIADB } from "../support/db";
import { until } from "../support/helpers";

@ChildEntity("conf_a")
class ConfA extends BaseTaskEntity {
  static queue = "qa";
  @Column({ type: "varchar", length: 64, nullable: true })
  label!: string | null;
  run() {
    return null;
  }
}

@ChildEntity("conf_b")
class ConfB extends BaseTaskEntity {
  static queue = "qb";
  static maxAttempts = 2;
  run() {
    return null;
  }
}

const LEASE = 60_000;

describe.each(WITH_MARIADB)("the dialect contract on %s", (dialect) => {
  let db: TestDb;
  let ds: DataSource;
  let worker: Dialect;
  let other: Dialect;
  useTestDatabase(dialect, (opened) => ({ db, ds } = opened), [ConfA, ConfB]);
  beforeEach(async () => {
    await ds.query(`DELETE FROM ormq_tasks`);
    await ds.query(`DELETE FROM ormq_task_events`);
    await ds.query(`DELETE FROM ormq_workers`);
    worker = createDialect(ds, "worker-1", memoryLogger().logger);
    other = createDialect(ds, "worker-2", memoryLogger().logger);
  });
  afterEach(async () => {
    await worker.close();
    await other.close();
  });

  const claimAll = (d: Dialect, limit = 100, types = ["conf_a", "conf_b"], queues: string[] | null = null) =>
    d.claim({ types, queues, limit, leaseMs: LEASE });
  const state = async (id: unknown) =>
    (await ds.query(`SELECT status, attempts, locked_by, run_at, max_attempts, last_error FROM ormq_tasks WHERE id = ${String(id)}`))[0] as
      | { status: string; attempts: unknown; locked_by: string | null; run_at: unknown; max_attempts: unknown; last_error: string | null }
      | undefined;
  const events = async (id: unknown) =>
    ((await ds.query(`SELECT kind FROM ormq_task_events WHERE task_id = ${String(id)} ORDER BY id`)) as { kind: string }[]).map((e) => e.kind);
  /** Each event's attempt start, as stored, beside the task's own `started_at`. */
  const starts = async (id: unknown) => {
    const rows = (await ds.query(`SELECT started_at FROM ormq_task_events WHERE task_id = ${String(id)} ORDER BY id`)) as { started_at: unknown }[];
    const [task] = (await ds.query(`SELECT started_at FROM ormq_tasks WHERE id = ${String(id)}`)) as { started_at: unknown }[];
    return { events: rows.map((r) => (r.started_at === null ? null : Number(r.started_at))), task: task ? Number(task.started_at) : undefined };
  };
  const done = (row: Record<string, unknown>, fields: Partial<Completion> = {}): Completion => ({
    id: String(row.id),
    attempt: Number(row.attempts),
    status: "succeeded",
    result: null,
    lastError: null,
    errors: null,
    delayMs: null,
    refundAttempt: false,
    event: "succeeded",
    history: true,
    remove: false,
    ...fields,
  });

  describe("claim", () => {
    it("takes ready tasks by priority, then due time, then insertion order, up to the limit, and marks them running", async () => {
      const repo = ds.getRepository(ConfA);
      const low = await repo.save(ConfA.create({ label: "low" }).withPriority(0));
      const high = await repo.save(ConfA.create({ label: "high" }).withPriority(5));
      const later = await repo.save(ConfA.create({ label: "later" }).withPriority(0));
      await repo.save(ConfA.create({ label: "future" }).delay(3_600_000));
      const first = await claimAll(worker, 2);
      expect(first.map((r) => String(r.id))).toEqual([high.id, low.id]);
      for (const row of first) expect(row).toMatchObject({ status: "running", locked_by: "worker-1" });
      expect(Number(first[0].attempts)).toBe(1);
      expect((await claimAll(worker)).map((r) => String(r.id))).toEqual([later.id]); // not the future one
      expect(await claimAll(worker)).toEqual([]);
    });

    it("filters by type and queue, and leaves other types alone", async () => {
      const a = await ds.getRepository(ConfA).save(ConfA.create({}));
      const b = await ds.getRepository(ConfB).save(ConfB.create({}));
      expect((await claimAll(worker, 10, ["conf_a", "conf_b"], ["qb"])).map((r) => String(r.id))).toEqual([b.id]);
      expect((await claimAll(worker, 10, ["conf_b"])).length).toBe(0);
      expect((await claimAll(worker, 10, ["conf_a"])).map((r) => String(r.id))).toEqual([a.id]);
    });

    it("a claim writes no history: the row of the attempt's outcome records its start", async () => {
      const a = await ds.getRepository(ConfA).save(ConfA.create({}));
      const [row] = await worker.claim({ types: ["conf_a"], queues: null, limit: 10, leaseMs: LEASE });
      expect(await events(a.id)).toEqual([]);
      expect(await worker.complete([done(row)])).toEqual(new Map([[String(a.id), "succeeded"]]));
      expect(await events(a.id)).toEqual(["succeeded"]);
      const { events: started, task } = await starts(a.id);
      expect(task).toBeGreaterThan(0);
      expect(started).toEqual([task]);
    });

    it("writes on every claimed row its worker, its now as started_at and updated_at, and that now plus the lease as locked_until (the worker sets these without reading them back)", async () => {
      await ds.getRepository(ConfA).save(Array.from({ length: 3 }, () => ConfA.create({})));
      const claimed = await claimAll(worker);
      expect(claimed.length).toBe(3);
      const stored = (await ds.query(`SELECT locked_by, started_at, updated_at, locked_until FROM ormq_tasks ORDER BY id`)) as Record<string, unknown>[];
      for (const row of stored) {
        expect(row.locked_by).toBe("worker-1");
        expect(Number(row.updated_at)).toBe(Number(row.started_at));
        expect(Number(row.locked_until)).toBe(Number(row.started_at) + LEASE);
      }
    });

    it("never hands one task to two workers", async () => {
      await ds.getRepository(ConfA).save(Array.from({ length: 50 }, () => ConfA.create({})));
      const [mine, theirs] = await Promise.all([claimAll(worker, 30), claimAll(other, 30)]);
      const ids = [...mine, ...theirs].map((r) => String(r.id));
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.length).toBe(50);
    });
  });

  describe("complete: every write is guarded by status, holder and attempt", () => {
    it("writes a success for the holder, and refuses a stale worker, a stale attempt and a rescued task", async () => {
      await ds.getRepository(ConfA).save(Array.from({ length: 4 }, () => ConfA.create({})));
      const [ok, staleWorker, staleAttempt, rescued] = await claimAll(worker);
      await ds.query(`UPDATE ormq_tasks SET status = 'pending', locked_by = NULL WHERE id = ${String(rescued.id)}`);
      const applied = await worker.complete([done(ok, { result: '"fine"' }), done(staleAttempt, { attempt: Number(staleAttempt.attempts) + 1 }), done(rescued)]);
      expect([...applied]).toEqual([[String(ok.id), "succeeded"]]);
      expect(await other.complete([done(staleWorker)])).toEqual(new Map());
      expect(await state(ok.id)).toMatchObject({ status: "succeeded", locked_by: null });
      expect(await state(staleWorker.id)).toMatchObject({ status: "running", locked_by: "worker-1" });
      expect(await state(staleAttempt.id)).toMatchObject({ status: "running" });
      expect(await state(rescued.id)).toMatchObject({ status: "pending" });
    });

    it("a retry is due after its delay, a refund gives the attempt back, and a cancel request wins over a retry", async () => {
      await ds.getRepository(ConfA).save(Array.from({ length: 3 }, () => ConfA.create({})));
      const [retry, handedBack, cancelled] = await claimAll(worker);
      await ds.query(`UPDATE ormq_tasks SET cancel_requested_at = 1 WHERE id = ${String(cancelled.id)}`);
      const before = Date.now();
      const pending = { status: "pending" as const, event: "retried" as const, lastError: "Error: boom", errors: "[]", delayMs: 600_000 };
      const applied = await worker.complete([
        done(retry, pending),
        done(handedBack, { status: "pending", event: "handed_back", refundAttempt: true }),
        done(cancelled, pending),
      ]);
      expect(Object.fromEntries(applied)).toEqual({ [String(retry.id)]: "pending", [String(handedBack.id)]: "pending", [String(cancelled.id)]: "cancelled" });
      const retried = await state(retry.id);
      expect(Number(retried!.run_at)).toBeGreaterThanOrEqual(before + 600_000 - 5_000);
      expect(retried).toMatchObject({ last_error: "Error: boom" });
      expect(Number((await state(handedBack.id))!.attempts)).toBe(0);
      expect(await events(cancelled.id)).toEqual(["cancelled"]);
      for (const id of [retry.id, handedBack.id, cancelled.id]) {
        const { events: started, task } = await starts(id);
        expect(started).toEqual([task]);
      }
    });

    it("remove deletes the row under the same guard; history off writes no event", async () => {
      await ds.getRepository(ConfA).save(Array.from({ length: 2 }, () => ConfA.create({})));
      const [gone, quiet] = await claimAll(worker);
      expect(await worker.complete([done(gone, { remove: true }), done(quiet, { history: false })])).toEqual(
        new Map([
          [String(gone.id), "succeeded"],
          [String(quiet.id), "succeeded"],
        ]),
      );
      expect(await state(gone.id)).toBeUndefined();
      expect(await events(quiet.id)).toEqual([]);
      expect(await events(gone.id)).toEqual(["succeeded"]);
      expect((await starts(gone.id)).events).toEqual([Number(gone.started_at)]);
    });
  });

  describe("leases", () => {
    it("heartbeat renews only the running tasks this worker holds, and writes its row again if it is gone", async () => {
      await worker.registerWorker({ name: "ConfA", host: "h", pid: 1, queues: null });
      await ds.getRepository(ConfA).save(Array.from({ length: 2 }, () => ConfA.create({})));
      const [mine] = await claimAll(worker, 1);
      const [theirs] = await claimAll(other, 1);
      await ds.query(`DELETE FROM ormq_workers`);
      expect(await worker.heartbeat([String(mine.id), String(theirs.id)], LEASE)).toEqual({ renewed: new Set([String(mine.id)]), busy: new Set() });
      expect(((await ds.query(`SELECT id FROM ormq_workers`)) as { id: string }[]).map((r) => r.id)).toEqual(["worker-1"]);
    });

    // Not SQLite: it has one writer on the file at a time, so no row is locked apart from the file.
    if (dialect !== "sqlite") {
      it("heartbeat does not wait for a row another transaction holds: it reports it busy, and renews it once free (row locks: not SQLite)", async () => {
        await worker.registerWorker({ name: "ConfA", host: "h", pid: 1, queues: null });
        await ds.getRepository(ConfA).save(Array.from({ length: 2 }, () => ConfA.create({})));
        const [locked, free] = await claimAll(worker, 2);
        const [lockedId, freeId] = [String(locked.id), String(free.id)];
        await ds.query(`UPDATE ormq_tasks SET locked_until = 1 WHERE id IN (${lockedId}, ${freeId})`);
        // Another transaction holds one row (as this worker's completer does while it writes it).
        const holder = ds.createQueryRunner();
        try {
          await holder.startTransaction();
          await holder.query(`UPDATE ormq_tasks SET updated_at = updated_at WHERE id = ${lockedId}`);
          expect(await worker.heartbeat([lockedId, freeId], LEASE)).toEqual({ renewed: new Set([freeId]), busy: new Set([lockedId]) });
          expect(Number((await ds.query(`SELECT locked_until FROM ormq_tasks WHERE id = ${lockedId}`))[0].locked_until)).toBe(1);
          await holder.commitTransaction();
        } finally {
          await holder.release();
        }
        expect(await worker.heartbeat([lockedId, freeId], LEASE)).toEqual({ renewed: new Set([lockedId, freeId]), busy: new Set() });
        expect(Number((await ds.query(`SELECT locked_until FROM ormq_tasks WHERE id = ${lockedId}`))[0].locked_until)).toBeGreaterThan(1);
      });
    }

    it("rescue returns expired tasks (pending, failed when out of attempts, cancelled when asked) and leaves live ones", async () => {
      await ds.getRepository(ConfB).save(Array.from({ length: 4 }, () => ConfB.create({})));
      const [again, outOfAttempts, asked, live] = await claimAll(worker);
      await ds.query(`UPDATE ormq_tasks SET locked_until = 1 WHERE id IN (${[again, outOfAttempts, asked].map((r) => String(r.id)).join(", ")})`);
      await ds.query(`UPDATE ormq_tasks SET attempts = 2 WHERE id = ${String(outOfAttempts.id)}`);
      await ds.query(`UPDATE ormq_tasks SET cancel_requested_at = 1 WHERE id = ${String(asked.id)}`);
      const rescued = await other.rescueExpired(100);
      expect(Object.fromEntries(rescued.map((r) => [r.id, r.status]))).toEqual({
        [String(again.id)]: "pending",
        [String(outOfAttempts.id)]: "failed",
        [String(asked.id)]: "cancelled",
      });
      expect(await state(live.id)).toMatchObject({ status: "running" });
      expect(await events(again.id)).toEqual(["rescued"]);
      const { events: started, task } = await starts(again.id);
      expect(started).toEqual([task]);
      // The rescued task's old holder can no longer write it.
      expect(await worker.complete([done(again)])).toEqual(new Map());
    });

    if (dialect !== "sqlite") {
      it("rescue does not wait for an expired row another transaction holds: it takes the others, and that one next round (row locks: not SQLite)", async () => {
        await ds.getRepository(ConfA).save(Array.from({ length: 2 }, () => ConfA.create({})));
        const [locked, free] = await claimAll(worker, 2);
        await ds.query(`UPDATE ormq_tasks SET locked_until = 1 WHERE id IN (${String(locked.id)}, ${String(free.id)})`);
        const holder = ds.createQueryRunner();
        try {
          await holder.startTransaction();
          await holder.query(`UPDATE ormq_tasks SET updated_at = updated_at WHERE id = ${String(locked.id)}`);
          expect(await other.rescueExpired(100)).toEqual([{ id: String(free.id), status: "pending" }]);
          await holder.commitTransaction();
        } finally {
          await holder.release();
        }
        expect(await other.rescueExpired(100)).toEqual([{ id: String(locked.id), status: "pending" }]);
      });
    }

    it("cancelRequested names only this worker's running tasks with a request", async () => {
      await ds.getRepository(ConfA).save(Array.from({ length: 3 }, () => ConfA.create({})));
      const [asked, notAsked] = await claimAll(worker, 2);
      const [theirs] = await claimAll(other, 1);
      await ds.query(`UPDATE ormq_tasks SET cancel_requested_at = 1 WHERE id IN (${String(asked.id)}, ${String(theirs.id)})`);
      expect(await worker.cancelRequested([String(asked.id), String(notAsked.id), String(theirs.id)])).toEqual([String(asked.id)]);
    });

    it("nextDueInMs gives the earliest scheduled task of the types asked", async () => {
      expect(await worker.nextDueInMs({ types: ["conf_a"], queues: null })).toBeNull();
      await ds.getRepository(ConfA).save(ConfA.create({}).delay(120_000));
      await ds.getRepository(ConfB).save(ConfB.create({}).delay(60_000));
      const due = await worker.nextDueInMs({ types: ["conf_a"], queues: null });
      expect(due).toBeGreaterThan(100_000);
      expect(due).toBeLessThanOrEqual(120_000);
    });
  });

  describe("flow control", () => {
    afterEach(async () => {
      await ds.query(`DELETE FROM ormq_controls`);
      await ds.query(`DELETE FROM ormq_rate_claims`);
    });
    const noLimits = { types: [], queues: [], typeRates: [], queueRates: [] };

    it("readControls reads paused queues and types and queue limits as the admin API writes them", async () => {
      await pauseQueue("qa", { dataSource: ds });
      await pauseType("conf_b", { dataSource: ds });
      await setQueueLimits("qb", { concurrency: 3, rate: { max: 10, perMs: 1_000 } }, { dataSource: ds });
      const controls = await worker.readControls();
      expect({ ...controls, queueLimits: [...controls.queueLimits], queueRates: [...controls.queueRates] }).toMatchObject({
        pausedQueues: ["qa"],
        pausedTypes: ["conf_b"],
        queueLimits: [["qb", 3]],
        queueRates: [["qb", { max: 10, perMs: 1_000 }]],
      });
    });

    it("a claim leaves excluded queues alone", async () => {
      await ds.getRepository(ConfA).save(ConfA.create({})); // queue qa
      await ds.getRepository(ConfB).save(ConfB.create({})); // queue qb
      const rows = await worker.claim({ types: ["conf_a", "conf_b"], queues: null, limit: 10, leaseMs: LEASE, excludedQueues: ["qa"] });
      expect(rows.map((r) => r.type)).toEqual(["conf_b"]);
    });

    it("a limited claim takes no more than a concurrency limit leaves room for, across workers, until a place is freed", async () => {
      await ds.getRepository(ConfA).save(["k1", "k1", "k1", "k2"].map((label) => ConfA.create({ label })));
      const limited = (d: Dialect) =>
        d.claim({ types: ["conf_a"], queues: null, limit: 10, leaseMs: LEASE, limits: { ...noLimits, types: [{ type: "conf_a", column: "label", max: 1 }] } });
      const first = await limited(worker);
      expect(first.map((r) => r.label).sort()).toEqual(["k1", "k2"]);
      expect(await limited(other)).toEqual([]); // k1 and k2 each hold their one place
      const k1 = first.find((r) => r.label === "k1")!;
      expect(await worker.complete([done(k1)])).toEqual(new Map([[String(k1.id), "succeeded"]]));
      expect((await limited(other)).map((r) => r.label)).toEqual(["k1"]);
    });

    it("a limited claim takes no more than a rate limit allows in its window", async () => {
      await ds.getRepository(ConfB).save(Array.from({ length: 5 }, () => ConfB.create({})));
      const limited = (d: Dialect) =>
        d.claim({ types: ["conf_b"], queues: null, limit: 10, leaseMs: LEASE, limits: { ...noLimits, queueRates: [{ queue: "qb", max: 2, perMs: 60_000 }] } });
      expect(await limited(worker)).toHaveLength(2);
      expect(await limited(other)).toEqual([]); // the window's two are taken, whoever asks
    });
  });

  describe("task writes outside a worker", () => {
    it("cancel and requeue are guarded by the status they expect", async () => {
      const [running, pending] = await ds.getRepository(ConfA).save([ConfA.create({}), ConfA.create({})]);
      expect((await claimAll(worker, 1)).map((r) => String(r.id))).toEqual([running.id]);
      const now = new Date();
      expect(await cancelPending(ds.manager, running.id, "cancelled: x", now)).toBe(false); // not pending
      expect(await requestCancel(ds.manager, pending.id, "cancelled: x", now)).toBe(false); // not running
      expect(await requestCancel(ds.manager, running.id, "cancelled: x", now)).toBe(true);
      expect(await requestCancel(ds.manager, running.id, "cancelled: x", now)).toBe(false); // asked already
      expect(await readTaskState(ds.manager, running.id)).toMatchObject({ status: "running", cancelRequested: true, type: "conf_a", queue: "qa" });
      expect(await cancelPending(ds.manager, pending.id, "cancelled: y", now)).toBe(true);
      expect(await cancelPending(ds.manager, pending.id, "cancelled: y", now)).toBe(false); // cancelled already
      expect(await requeueFailed(ds.manager, pending.id, now)).toBe(false); // not failed
      await ds.query(`UPDATE ormq_tasks SET status = 'failed', attempts = 5, max_attempts = 5 WHERE id = ${pending.id}`);
      expect(await requeueFailed(ds.manager, pending.id, now)).toBe(true);
      expect(await state(pending.id)).toMatchObject({ status: "pending" });
      expect(Number((await state(pending.id))!.max_attempts)).toBe(6);
      expect(await readTaskState(ds.manager, "999999")).toBeNull();
    });

    it("prune's delete takes only finished tasks in the statuses asked, older than the cutoff", async () => {
      const [old, recent, failed] = await ds.getRepository(ConfA).save([ConfA.create({}), ConfA.create({}), ConfA.create({})]);
      await ds.query(`UPDATE ormq_tasks SET status = 'succeeded', finished_at = 1000 WHERE id = ${old.id}`);
      await ds.query(`UPDATE ormq_tasks SET status = 'succeeded', finished_at = ${Date.now()} WHERE id = ${recent.id}`);
      await ds.query(`UPDATE ormq_tasks SET status = 'failed', finished_at = 1000 WHERE id = ${failed.id}`);
      const deleted = await ds.transaction((m) => deleteFinished(m, [old.id, recent.id, failed.id], ["succeeded"], Date.now() - 60_000));
      expect(deleted).toBe(1);
      expect(await state(old.id)).toBeUndefined();
      expect(await events(old.id)).toEqual([]);
      expect(await state(recent.id)).toBeDefined();
      expect(await state(failed.id)).toBeDefined();
    });
  });

  describe("orphaned events", () => {
    it("are deleted in batches, older than the cutoff only, and events of existing tasks stay", async () => {
      const [kept] = await ds.getRepository(ConfA).save([ConfA.create({ label: "kept" })]);
      const values = (taskId: string, at: number) => `(${taskId}, 'started', ${at}, 'w', 1)`;
      const orphans = ["900001", "900002", "900003", "900004", "900005"].map((id) => values(id, 1_000));
      await ds.query(
        `INSERT INTO ormq_task_events (task_id, kind, at, worker, attempt) VALUES ${[...orphans, values("900006", Date.now() + 60_000), values(kept.id, 1_000)].join(", ")}`,
      );
      const deleted = await deleteOrphanEvents(ds.manager, Date.now(), 2);
      expect(deleted).toBe(5);
      const left = ((await ds.query(`SELECT task_id FROM ormq_task_events ORDER BY task_id`)) as { task_id: unknown }[]).map((r) => String(r.task_id));
      expect(left.sort()).toEqual([kept.id, "900006"].sort());
    });
  });

  describe("bulk insert", () => {
    it("inserts rows in order and returns their ids", async () => {
      const { tasks } = tablesOf(ds);
      const columns = ["type", "queue", "status", "priority", "run_at", "attempts", "max_attempts", "created_at", "updated_at"];
      const now = Date.now();
      const rows = Array.from({ length: 25 }, (_, i) => ["conf_a", "qa", "pending", i, now, 0, 3, now, now]);
      const runner = ds.createQueryRunner();
      try {
        const returned = await bulkInsert(runner, tasks, columns, rows, "id");
        const ids = returned.map((id) => BigInt(String(id)));
        expect(ids.length).toBe(25);
        for (let i = 1; i < ids.length; i++) expect(ids[i] > ids[i - 1]).toBe(true);
        const stored = (await ds.query(`SELECT id, priority FROM ${tasks} WHERE type = 'conf_a' AND queue = 'qa'`)) as { id: unknown; priority: unknown }[];
        const priorityOf = new Map(stored.map((r) => [String(r.id), Number(r.priority)]));
        expect(returned.map((id) => priorityOf.get(String(id)))).toEqual(rows.map((r) => r[3]));
      } finally {
        await runner.release();
      }
    });
  });

  it("claims go on after a migration adds a column to the task table while the worker holds its prepared statements", async () => {
    const first = await ds.getRepository(ConfA).save(ConfA.create({ label: "before" }));
    expect((await claimAll(worker)).map((r) => String(r.id))).toEqual([first.id]);
    expect(await claimAll(worker)).toEqual([]); // prepares the claim's other form (after the watermark) too
    // As a user's migration for a new task class would, on the connection the claims just used.
    await ds.query(`ALTER TABLE ormq_tasks ADD COLUMN conformance_extra integer`);
    try {
      const second = await ds.getRepository(ConfA).save(ConfA.create({ label: "after" }));
      const claimed = await claimAll(worker);
      expect(claimed.map((r) => String(r.id))).toEqual([second.id]);
      expect(claimed[0]).toHaveProperty("conformance_extra", null);
      expect(await worker.complete([done(claimed[0])])).toEqual(new Map([[second.id, "succeeded"]]));
    } finally {
      await ds.query(`ALTER TABLE ormq_tasks DROP COLUMN conformance_extra`);
    }
    // And once more after the column went again.
    const third = await ds.getRepository(ConfA).save(ConfA.create({ label: "third" }));
    expect((await claimAll(worker)).map((r) => String(r.id))).toEqual([third.id]);
  });

  it(`uses the database clock: ${dialect !== "sqlite" ? "the server's" : "this host's (clockSql is null: skipped)"}`, async () => {
    const clockSql = contractOf(ds).clockSql;
    if (clockSql === null) return expect(dialect).toBe("sqlite");
    const [{ now }] = (await ds.query(clockSql)) as { now: unknown }[];
    expect(Math.abs(Number(now) - Date.now())).toBeLessThan(5_000);
  });

  describe("registration, wake-ups, closing and the unique guard", () => {
    it("registerWorker writes the worker's row, running; markStopped marks it stopped", async () => {
      await worker.registerWorker({ name: "ConfA", host: "h", pid: 42, queues: ["qa"] });
      const [row] = await ds.query(`SELECT state, pid, stopped_at FROM ormq_workers WHERE id = 'worker-1'`);
      expect(row).toMatchObject({ state: "running", pid: 42, stopped_at: null });
      await worker.markStopped();
      const [after] = await ds.query(`SELECT state, stopped_at FROM ormq_workers WHERE id = 'worker-1'`);
      expect(after.state).toBe("stopped");
      expect(after.stopped_at).not.toBeNull();
    });

    it("listen wakes the worker when another connection commits a task, until close", async () => {
      const woken: (readonly string[] | null)[] = [];
      await worker.listen((announcements) => woken.push(announcements));
      woken.length = 0;
      await ds.getRepository(ConfA).save(ConfA.create({ label: "wake" }));
      await until("the worker is woken", () => woken.length > 0, 5_000);
      // What a wake-up names, when it names anything, concerns the committed task.
      const named = woken.filter((w): w is readonly string[] => w !== null).flat();
      for (const a of named) expect(a).toBe("qa/conf_a");
      await worker.close();
      woken.length = 0;
      await ds.getRepository(ConfA).save(ConfA.create({ label: "after close" }));
      await new Promise((r) => setTimeout(r, 300)); // several change checks, and a NOTIFY's delivery
      expect(woken).toEqual([]);
      worker = createDialect(ds, "worker-1", memoryLogger().logger); // afterEach closes it again
    });

    it("the unique guard: reported installed once installed, absent once dropped, and installed again", async () => {
      const guard = contractOf(ds).schema.uniqueGuard;
      const tasks = tablesOf(ds).tasks;
      // (On SQLite, TypeORM's rebuild of the table for the test classes' columns dropped the
      // migration's trigger: the reason for installWhenMissing.)
      if ((await guard.installed(ds, tasks)) === "absent") for (const statement of guard.install(tasks)) await ds.query(statement);
      expect(await guard.installed(ds, tasks)).not.toBe("absent");
      try {
        for (const statement of guard.drop(tasks)) await ds.query(statement);
        expect(await guard.installed(ds, tasks)).toBe("absent");
      } finally {
        for (const statement of guard.install(tasks)) await ds.query(statement);
      }
      expect(await guard.installed(ds, tasks)).not.toBe("absent");
    });
  });
});
