/**
 * Part of the dialect conformance suite (see conformance.test.ts): the shared statement modules
 * every dialect must pass, called directly on both databases with rows seeded to known values.
 * taskReads (stats, list and show), scheduleStatements (schedule rows and the guarded tick),
 * controlsWrites and controlsRead (flow control rows), maintenanceLease (the maintenance jobs'
 * leases) and uniqueTasks (the holders of unique keys, and the guarded replace).
 */
import { ChildEntity, Column, type DataSource, type EntityManager } from "typeorm";
import { BaseTaskEntity } from "../../src";
import { readControlRows } from "../../src/dialect/controlsRead";
import { upsertControl } from "../../src/dialect/controlsWrites";
import { holdLease, leaseHolder, parseLease, releaseLease } from "../../src/dialect/maintenanceLease";
import {
  deleteScheduleRows,
  insertSchedule,
  readSchedules,
  recoverSchedule,
  setSchedulePaused,
  tryTickRows,
  updateSchedule,
  writeTick,
  type ScheduleDefinition,
  type TickWrite,
} from "../../src/dialect/scheduleStatements";
import {
  countByQueueTypeStatus,
  countFinishedSince,
  countLiveWorkers,
  countReadyTasks,
  countUnfinishedTasks,
  eventRows,
  finishedPerMinute,
  listTaskRows,
  oldestReadyRunAt,
  readOutcomes,
  readyByQueue,
  runningByWorker,
  taskIdRange,
  taskRow,
  tasksWithUniqueKey,
  workerRows,
} from "../../src/dialect/taskReads";
import type { CheckedTaskFilter } from "../../src/dialect/taskFilterSql";
import { ensureUniqueGuard, replacePending, standingTasks, UniqueGuardState, uniqueKeysByIds } from "../../src/dialect/uniqueTasks";
import { WITH_MARIADB, useTestDatabase } from "../support/db";

@ChildEntity("stmt_a")
class StmtA extends BaseTaskEntity {
  static queue = "sq_a";
  @Column({ type: "varchar", length: 64, nullable: true })
  label!: string | null;
  run() {
    return null;
  }
}

@ChildEntity("stmt_b")
class StmtB extends BaseTaskEntity {
  static queue = "sq_b";
  run() {
    return null;
  }
}

const NO_FILTER: CheckedTaskFilter = { statuses: [], columns: [] };
const NONE_PAUSED = { queues: [], types: [] };

describe.each(WITH_MARIADB)("the shared statements on %s", (dialect) => {
  let ds: DataSource;
  let m: EntityManager;
  /** ormq_meta's `key` column, quoted as this database quotes a name. */
  const KEY = dialect === "mariadb" ? "`key`" : `"key"`;
  useTestDatabase(dialect, (opened) => ((ds = opened.ds), (m = opened.ds.manager)), [StmtA, StmtB]);
  beforeEach(async () => {
    for (const table of ["ormq_tasks", "ormq_task_events", "ormq_workers", "ormq_schedules", "ormq_controls"]) await ds.query(`DELETE FROM ${table}`);
    await ds.query(`DELETE FROM ormq_meta WHERE ${KEY} LIKE 'lease:%'`);
  });

  /** New tasks (pending, due now), ids as decimal strings, in the order given. */
  const tasksA = async (n: number, label: string | null = null) => (await ds.getRepository(StmtA).save(Array.from({ length: n }, () => StmtA.create({ label })))).map((t) => t.id);
  const taskB = async () => (await ds.getRepository(StmtB).save(StmtB.create({}))).id;
  /** Sets columns of a task with a plain UPDATE (the same SQL on both databases). */
  const set = (id: string, assignments: string) => ds.query(`UPDATE ormq_tasks SET ${assignments} WHERE id = ${id}`);
  const ids = (rows: readonly { id: unknown }[]) => rows.map((r) => String(r.id));
  const byId = (a: string, b: string) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0);

  describe("taskReads", () => {
    it("countByQueueTypeStatus counts tasks by queue, type and status, ordered by each", async () => {
      const [, , a3, moved] = await tasksA(4);
      await set(a3, `status = 'running'`);
      await set(moved, `queue = 'sq_b'`);
      const b1 = await taskB();
      await taskB();
      await set(b1, `status = 'succeeded', finished_at = 5`);
      expect(await countByQueueTypeStatus(ds)).toEqual([
        { queue: "sq_a", type: "stmt_a", status: "pending", count: 2 },
        { queue: "sq_a", type: "stmt_a", status: "running", count: 1 },
        { queue: "sq_b", type: "stmt_a", status: "pending", count: 1 },
        { queue: "sq_b", type: "stmt_b", status: "pending", count: 1 },
        { queue: "sq_b", type: "stmt_b", status: "succeeded", count: 1 },
      ]);
    });

    it("the ready reads (oldestReadyRunAt, readyByQueue, countReadyTasks) take pending tasks due at `now`, and leave paused queues and types out", async () => {
      const [r1, r2, future, running, d1] = await tasksA(5);
      const [b1, c1] = [await taskB(), await taskB()];
      await set(r1, `run_at = 1000`);
      await set(r2, `run_at = 500`);
      await set(future, `run_at = 3000`);
      await set(running, `run_at = 100, status = 'running'`);
      await set(d1, `run_at = 2000, queue = 'sq_c'`); // due exactly at now
      await set(b1, `run_at = 1500`);
      await set(c1, `run_at = 200, queue = 'sq_c'`);
      const now = 2000;

      expect(Number(await oldestReadyRunAt(ds, now, NONE_PAUSED))).toBe(200);
      expect(Number(await oldestReadyRunAt(ds, now, { queues: ["sq_c"], types: [] }))).toBe(500);
      expect(Number(await oldestReadyRunAt(ds, now, { queues: [], types: ["stmt_b"] }))).toBe(500);
      expect(Number(await oldestReadyRunAt(ds, now, { queues: ["sq_a"], types: ["stmt_b"] }))).toBe(2000);
      expect(await oldestReadyRunAt(ds, 199, NONE_PAUSED)).toBeNull();
      expect(await oldestReadyRunAt(ds, now, { queues: ["sq_a", "sq_b", "sq_c"], types: [] })).toBeNull();

      const ready = async (paused: { queues: string[]; types: string[] }, at = now) =>
        (await readyByQueue(ds, at, paused)).map((r) => ({ queue: r.queue, ready: r.ready, oldest: Number(r.oldest) }));
      expect(await ready(NONE_PAUSED)).toEqual([
        { queue: "sq_a", ready: 2, oldest: 500 },
        { queue: "sq_b", ready: 1, oldest: 1500 },
        { queue: "sq_c", ready: 2, oldest: 200 },
      ]);
      expect(await ready({ queues: ["sq_b"], types: ["stmt_b"] })).toEqual([
        { queue: "sq_a", ready: 2, oldest: 500 },
        { queue: "sq_c", ready: 1, oldest: 2000 },
      ]);
      expect(await ready(NONE_PAUSED, 499)).toEqual([{ queue: "sq_c", ready: 1, oldest: 200 }]);

      expect(await countReadyTasks(ds, { types: [], queues: null }, now)).toBe(0);
      expect(await countReadyTasks(ds, { types: ["stmt_a"], queues: null }, now)).toBe(3);
      expect(await countReadyTasks(ds, { types: ["stmt_a", "stmt_b"], queues: ["sq_c"] }, now)).toBe(2);
      expect(await countReadyTasks(ds, { types: ["stmt_a", "stmt_b"], queues: null }, 1999)).toBe(4); // not d1
      expect(await countReadyTasks(ds, { types: ["stmt_a", "stmt_b"], queues: null }, 499)).toBe(1);
    });

    it("countUnfinishedTasks counts pending and running tasks, of the types and queues given", async () => {
      const [, r1, s1, f1, c1, q1] = await tasksA(6);
      await set(r1, `status = 'running'`);
      await set(s1, `status = 'succeeded'`);
      await set(f1, `status = 'failed'`);
      await set(c1, `status = 'cancelled'`);
      await set(q1, `queue = 'sq_c'`);
      const b1 = await taskB();
      await set(b1, `status = 'running'`);
      expect(await countUnfinishedTasks(ds, {})).toBe(4);
      expect(await countUnfinishedTasks(ds, { types: ["stmt_b"] })).toBe(1);
      expect(await countUnfinishedTasks(ds, { queues: ["sq_a"] })).toBe(2);
      expect(await countUnfinishedTasks(ds, { types: ["stmt_a"], queues: ["sq_c", "sq_b"] })).toBe(1);
      expect(await countUnfinishedTasks(ds, { types: ["stmt_a"], queues: null })).toBe(3);
    });

    it("countFinishedSince and finishedPerMinute count finished tasks at or after `since`, by minute", async () => {
      const M = 28_000_000; // a minute, as epoch ms / 60,000
      const [e1, e2, e3, e4] = await tasksA(5); // the fifth stays pending: finished_at null
      await set(e1, `status = 'succeeded', finished_at = ${M * 60_000 + 1}`);
      await set(e2, `status = 'failed', finished_at = ${M * 60_000 + 59_999}`);
      await set(e3, `status = 'cancelled', finished_at = ${(M + 2) * 60_000}`);
      await set(e4, `status = 'succeeded', finished_at = ${(M - 1) * 60_000 + 30_000}`);
      expect(await countFinishedSince(ds, M * 60_000)).toBe(3);
      expect(await countFinishedSince(ds, M * 60_000 + 1)).toBe(3);
      expect(await countFinishedSince(ds, M * 60_000 + 2)).toBe(2);
      expect(await countFinishedSince(ds, (M - 1) * 60_000)).toBe(4);
      expect(await countFinishedSince(ds, (M + 2) * 60_000 + 1)).toBe(0);
      const perMinute = async (since: number) => (await finishedPerMinute(ds, since)).sort((a, b) => a.minute - b.minute);
      expect(await perMinute(M * 60_000)).toEqual([
        { minute: M, count: 2 },
        { minute: M + 2, count: 1 },
      ]);
      expect(await perMinute((M - 1) * 60_000 + 30_000)).toEqual([
        { minute: M - 1, count: 1 },
        { minute: M, count: 2 },
        { minute: M + 2, count: 1 },
      ]);
      expect(await finishedPerMinute(ds, (M + 3) * 60_000)).toEqual([]);
    });

    it("countLiveWorkers, workerRows and runningByWorker read the workers and what they hold", async () => {
      const worker = (id: string, state: string, startedAt: number, heartbeat: number, stoppedAt: number | null, queues: string | null) =>
        ds.query(
          `INSERT INTO ormq_workers (id, name, host, pid, queues, state, started_at, last_heartbeat_at, stopped_at) VALUES ('${id}', 'StmtA', 'host-${id}', ${startedAt}, ${queues === null ? "NULL" : `'${queues}'`}, '${state}', ${startedAt}, ${heartbeat}, ${stoppedAt ?? "NULL"})`,
        );
      await worker("w1", "running", 100, 1000, null, '["sq_a"]');
      await worker("w2", "stopping", 200, 500, null, null);
      await worker("w3", "stopped", 300, 1000, 900, null);
      await worker("w4", "stopped", 50, 400, 400, null);

      expect(await countLiveWorkers(ds, 600)).toBe(1);
      expect(await countLiveWorkers(ds, 500)).toBe(2);
      expect(await countLiveWorkers(ds, 1001)).toBe(0);

      const rows = (await workerRows(ds, 800)).map((r) => ({
        ...r,
        started_at: Number(r.started_at),
        last_heartbeat_at: Number(r.last_heartbeat_at),
        stopped_at: r.stopped_at === null ? null : Number(r.stopped_at),
        pid: Number(r.pid),
      }));
      expect(rows).toEqual([
        { id: "w3", name: "StmtA", host: "host-w3", pid: 300, queues: null, state: "stopped", started_at: 300, last_heartbeat_at: 1000, stopped_at: 900 },
        { id: "w2", name: "StmtA", host: "host-w2", pid: 200, queues: null, state: "stopping", started_at: 200, last_heartbeat_at: 500, stopped_at: null },
        { id: "w1", name: "StmtA", host: "host-w1", pid: 100, queues: '["sq_a"]', state: "running", started_at: 100, last_heartbeat_at: 1000, stopped_at: null },
      ]);
      expect((await workerRows(ds, 400)).map((r) => r.id)).toEqual(["w3", "w2", "w1", "w4"]);

      const [t1, t2, t3, t4, t5] = await tasksA(5);
      await set(t1, `status = 'running', locked_by = 'w1'`);
      await set(t2, `status = 'running', locked_by = 'w1'`);
      await set(t3, `status = 'running', locked_by = 'w2'`);
      await set(t4, `status = 'pending', locked_by = 'w3'`); // not running
      await set(t5, `status = 'running', locked_by = NULL`); // no holder
      expect(await runningByWorker(ds)).toEqual(
        new Map([
          ["w1", 2],
          ["w2", 1],
        ]),
      );
    });

    it("taskIdRange, listTaskRows (newest first, filtered, within an id range) and taskRow", async () => {
      expect(await taskIdRange(ds)).toBeNull();
      const [t1, t2, t4, t5] = await tasksA(4);
      const t3 = await taskB(); // inserted after t5: ids are t1 < t2 < t4 < t5 < t3
      const all = [t1, t2, t4, t5, t3];
      expect(await taskIdRange(ds)).toEqual({ min: t1, max: t3 });
      await set(t1, `label = 'x', created_at = 1000, priority = 1`);
      await set(t2, `label = 'y', created_at = 2000, priority = 2, status = 'succeeded', finished_at = 2500`);
      await set(t3, `created_at = 3000, priority = 3`);
      await set(t4, `created_at = 4000, priority = 0, status = 'failed', finished_at = 4500`);
      await set(t5, `label = 'x', created_at = 5000, priority = 5, run_at = 7000`);

      const list = async (filter: Partial<CheckedTaskFilter>, limit = 100, range?: { below: string; from: string }) =>
        ids(await listTaskRows(ds, ["id"] as const, { ...NO_FILTER, ...filter }, limit, range));
      expect(await list({})).toEqual([...all].reverse());
      expect(await list({}, 2)).toEqual([t3, t5]);
      expect(await list({ statuses: ["pending"] })).toEqual([t3, t5, t1]);
      expect(await list({ statuses: ["succeeded", "failed"] })).toEqual([t4, t2]);
      expect(await list({ type: "stmt_b" })).toEqual([t3]);
      expect(await list({ queue: "sq_a" })).toEqual([t5, t4, t2, t1]);
      expect(await list({ id: t4 })).toEqual([t4]);
      expect(await list({ createdFrom: 2000, createdBefore: 4000 })).toEqual([t3, t2]);
      expect(await list({ columns: [{ column: "label", op: "eq", value: "x" }] })).toEqual([t5, t1]);
      expect(await list({ columns: [{ column: "label", op: "null" }] })).toEqual([t3, t4]);
      expect(await list({ columns: [{ column: "priority", op: "range", min: 1, max: 3 }] })).toEqual([t3, t2, t1]);
      expect(await list({ statuses: ["pending"], columns: [{ column: "priority", op: "range", min: 2 }] })).toEqual([t3, t5]);
      expect(await list({}, 100, { below: t5, from: t2 })).toEqual([t4, t2]);
      expect(await list({ statuses: ["pending"] }, 100, { below: t3, from: t1 })).toEqual([t5, t1]);

      // Several properties, each under its own name, as stored.
      const [row] = await listTaskRows(ds, ["id", "type", "queue", "status", "priority", "runAt", "createdAt", "finishedAt"] as const, { ...NO_FILTER, id: t5 }, 10);
      expect({ ...row, id: String(row.id), priority: Number(row.priority), runAt: Number(row.runAt), createdAt: Number(row.createdAt) }).toEqual({
        id: t5,
        type: "stmt_a",
        queue: "sq_a",
        status: "pending",
        priority: 5,
        runAt: 7000,
        createdAt: 5000,
        finishedAt: null,
      });

      const whole = await taskRow(ds, t2);
      expect(whole).toMatchObject({ type: "stmt_a", queue: "sq_a", status: "succeeded", label: "y", locked_by: null });
      expect([String(whole!.id), Number(whole!.created_at), Number(whole!.finished_at), Number(whole!.priority)]).toEqual([t2, 2000, 2500, 2]);
      expect(await taskRow(ds, "999999999")).toBeUndefined();
    });

    it("eventRows reads a task's events oldest first, the properties asked; readOutcomes the state of the tasks that exist", async () => {
      const [t, other] = await tasksA(2);
      const event = (taskId: string, kind: string, at: number, worker: string | null, attempt: number | null, error: string | null) =>
        ds.query(
          `INSERT INTO ormq_task_events (task_id, kind, at, worker, attempt, error) VALUES (${taskId}, '${kind}', ${at}, ${worker === null ? "NULL" : `'${worker}'`}, ${attempt ?? "NULL"}, ${error === null ? "NULL" : `'${error}'`})`,
        );
      await event(t, "started", 3000, "w1", 1, null);
      await event(other, "started", 3500, "w2", 1, null);
      await event(t, "retried", 2000, "w1", 1, "Error: boom"); // an earlier time, a later row: read by id
      await event(t, "succeeded", 4000, "w1", 2, null);
      const rows = await eventRows(ds, t, ["id", "taskId", "kind", "at", "worker", "attempt", "error"] as const);
      expect(rows.map((r) => ({ ...r, id: undefined, taskId: String(r.taskId), at: Number(r.at), attempt: Number(r.attempt) }))).toEqual([
        { id: undefined, taskId: t, kind: "started", at: 3000, worker: "w1", attempt: 1, error: null },
        { id: undefined, taskId: t, kind: "retried", at: 2000, worker: "w1", attempt: 1, error: "Error: boom" },
        { id: undefined, taskId: t, kind: "succeeded", at: 4000, worker: "w1", attempt: 2, error: null },
      ]);
      const eventIds = rows.map((r) => String(r.id));
      expect([...eventIds].sort(byId)).toEqual(eventIds);
      expect(await eventRows(ds, "999999999", ["kind"] as const)).toEqual([]);

      expect(await readOutcomes(ds, [])).toEqual([]);
      await set(t, `status = 'succeeded', result = '"done"', errors = NULL, progress = 0.5, progress_message = 'half'`);
      await set(other, `status = 'failed', last_error = 'Error: x', errors = '["Error: x"]'`);
      const outcomes = (await readOutcomes(ds, [other, t, "999999999"])).sort((a, b) => byId(a.id, b.id));
      expect(outcomes).toEqual([
        { id: t, status: "succeeded", result: '"done"', last_error: null, errors: null, progress: 0.5, progress_message: "half" },
        { id: other, status: "failed", result: null, last_error: "Error: x", errors: '["Error: x"]', progress: null, progress_message: null },
      ]);
    });

    it("tasksWithUniqueKey names the tasks holding a key, newest first, up to the limit, whatever their status", async () => {
      const [t1, t2, t3, t4] = await tasksA(4);
      await set(t1, `status = 'succeeded', unique_key = 'k1'`);
      await set(t2, `status = 'failed', unique_key = 'k1'`);
      await set(t3, `unique_key = 'k1'`);
      await set(t4, `unique_key = 'k2'`);
      expect(await tasksWithUniqueKey(ds, "k1", 10)).toEqual([
        { id: t3, status: "pending" },
        { id: t2, status: "failed" },
        { id: t1, status: "succeeded" },
      ]);
      expect(await tasksWithUniqueKey(ds, "k1", 2)).toEqual([
        { id: t3, status: "pending" },
        { id: t2, status: "failed" },
      ]);
      expect(await tasksWithUniqueKey(ds, "k2", 10)).toEqual([{ id: t4, status: "pending" }]);
      expect(await tasksWithUniqueKey(ds, "k3", 10)).toEqual([]);
    });
  });

  describe("scheduleStatements", () => {
    const definition = (name: string, fields: Partial<ScheduleDefinition> = {}): ScheduleDefinition => ({
      name,
      type: "stmt_a",
      cron: "0 * * * *",
      timezone: null,
      catchUp: "skip",
      task: '{"columns":["type"],"values":["stmt_a"]}',
      source: "api",
      ...fields,
    });
    const stored = (d: ScheduleDefinition, fields: { paused?: boolean; revision?: number; lastTick?: number | null; createdAt: number; updatedAt: number }) => ({
      ...d,
      paused: false,
      revision: 0,
      lastTick: null,
      ...fields,
    });
    const one = async (name: string) => (await readSchedules(m, { name }))[0];
    const names = async (options: { active?: boolean } = {}) => (await readSchedules(m, options)).map((s) => s.name);

    /** A tick's task rows: one StmtA task per tick, as a scheduler writes them (extra columns optional). */
    const tick = (name: string, revision: number, lastTick: number | null, ticks: number[], extra: Record<string, unknown> = {}): TickWrite => ({
      name,
      revision,
      lastTick,
      next: ticks.at(-1)!,
      columns: ["type", "queue", "status", "priority", "run_at", "attempts", "max_attempts", "created_at", "updated_at", "schedule_name", ...Object.keys(extra)],
      rows: ticks.map((t) => ["stmt_a", "sq_a", "pending", 0, t, 0, 3, t, 1, name, ...Object.values(extra)]),
    });
    const ticksOf = async (name: string) =>
      (await ds.query<{ id: unknown; run_at: unknown; created_at: unknown }[]>(`SELECT id, run_at, created_at FROM ormq_tasks WHERE schedule_name = '${name}' ORDER BY id`)).map((r) => ({
        id: String(r.id),
        runAt: Number(r.run_at),
        createdAt: Number(r.created_at),
      }));

    it("insertSchedule writes a new schedule and leaves one of the same name as it is; readSchedules reads them by name", async () => {
      const one1 = definition("s_one");
      const two = definition("s_two", { source: "class", timezone: "Europe/Paris", catchUp: "all", cron: "*/10 * * * * *" });
      await insertSchedule(m, one1, 1000);
      await insertSchedule(m, two, 2000);
      await insertSchedule(m, definition("s_one", { cron: "*/5 * * * *", task: "{}" }), 3000); // the name is taken: nothing
      expect(await readSchedules(m)).toEqual([stored(one1, { createdAt: 1000, updatedAt: 1000 }), stored(two, { createdAt: 2000, updatedAt: 2000 })]);
      expect(await readSchedules(m, { name: "s_two" })).toEqual([stored(two, { createdAt: 2000, updatedAt: 2000 })]);
      expect(await readSchedules(m, { name: "missing" })).toEqual([]);
    });

    it("updateSchedule replaces the definition under the revision and source read, keeps the last tick, and changes nothing when stale", async () => {
      await insertSchedule(m, definition("s_one"), 1000);
      await ds.query(`UPDATE ormq_schedules SET last_tick = 5000 WHERE name = 's_one'`);
      const changed = definition("s_one", { cron: "*/5 * * * *", timezone: "UTC", catchUp: "one", task: "{}" });
      expect(await updateSchedule(m, changed, 0, 2000)).toBe(true);
      expect(await one("s_one")).toEqual(stored(changed, { revision: 1, lastTick: 5000, createdAt: 1000, updatedAt: 2000 }));
      // A writer that read revision 0 lost: nothing changes.
      expect(await updateSchedule(m, definition("s_one", { cron: "*/10 * * * *" }), 0, 3000)).toBe(false);
      // Another source's schedule of that name is not replaced, at the right revision either.
      expect(await updateSchedule(m, definition("s_one", { cron: "*/10 * * * *", source: "class" }), 1, 3000)).toBe(false);
      expect(await updateSchedule(m, definition("missing"), 0, 3000)).toBe(false);
      expect(await one("s_one")).toEqual(stored(changed, { revision: 1, lastTick: 5000, createdAt: 1000, updatedAt: 2000 }));
      expect(await readSchedules(m, { name: "missing" })).toEqual([]);
    });

    it("setSchedulePaused pauses and resumes (a new revision each time); readSchedules({ active }) leaves paused ones out", async () => {
      await insertSchedule(m, definition("s_a"), 1000);
      await insertSchedule(m, definition("s_b"), 1000);
      expect(await setSchedulePaused(m, "s_a", true, 2000)).toBe(true);
      expect(await one("s_a")).toMatchObject({ paused: true, revision: 1, updatedAt: 2000, createdAt: 1000 });
      expect(await names({ active: true })).toEqual(["s_b"]);
      expect(await names()).toEqual(["s_a", "s_b"]);
      expect(await setSchedulePaused(m, "s_a", false, 3000)).toBe(true);
      expect(await one("s_a")).toMatchObject({ paused: false, revision: 2, updatedAt: 3000 });
      expect(await names({ active: true })).toEqual(["s_a", "s_b"]);
      expect(await setSchedulePaused(m, "missing", true, 4000)).toBe(false);
      expect(await one("s_b")).toMatchObject({ paused: false, revision: 0 });
    });

    it("deleteScheduleRows deletes by name, only of the source when given, and says whether one existed", async () => {
      await insertSchedule(m, definition("s_a"), 1000);
      await insertSchedule(m, definition("s_b", { source: "class" }), 1000);
      await insertSchedule(m, definition("s_c"), 1000);
      expect(await deleteScheduleRows(m, "s_b", "api")).toBe(false);
      expect(await names()).toEqual(["s_a", "s_b", "s_c"]);
      expect(await deleteScheduleRows(m, ["s_a", "s_b"], "class")).toBe(true);
      expect(await names()).toEqual(["s_a", "s_c"]);
      expect(await deleteScheduleRows(m, [])).toBe(false);
      expect(await deleteScheduleRows(m, ["s_a", "s_c", "missing"])).toBe(true);
      expect(await names()).toEqual([]);
      expect(await deleteScheduleRows(m, "s_a")).toBe(false);
    });

    it("writeTick writes the tick's tasks and advances the schedule under its guard (tick, revision, pause); a lost write writes nothing and returns null", async () => {
      await insertSchedule(m, definition("s_tick"), 1000);
      let announced = 0;
      const announce = () => void announced++;

      const first = await writeTick(ds, tick("s_tick", 0, null, [60_000, 120_000]), announce);
      expect(first).toHaveLength(2);
      expect(await ticksOf("s_tick")).toEqual([
        { id: first![0], runAt: 60_000, createdAt: 60_000 },
        { id: first![1], runAt: 120_000, createdAt: 120_000 },
      ]);
      expect(await one("s_tick")).toMatchObject({ lastTick: 120_000, revision: 0 });
      expect(announced).toBe(1);

      // The same tick again (another scheduler that read the same row): nothing written.
      expect(await writeTick(ds, tick("s_tick", 0, null, [60_000, 120_000]), announce)).toBeNull();
      // A last tick that is not the one stored: nothing either.
      expect(await writeTick(ds, tick("s_tick", 0, 60_000, [180_000]), announce)).toBeNull();
      expect((await ticksOf("s_tick")).map((t) => t.id)).toEqual(first);
      expect(await one("s_tick")).toMatchObject({ lastTick: 120_000 });
      expect(announced).toBe(1);

      // From the stored tick: written.
      const second = await writeTick(ds, tick("s_tick", 0, 120_000, [180_000]), announce);
      expect(second).toHaveLength(1);
      expect(await one("s_tick")).toMatchObject({ lastTick: 180_000 });

      // A revision changed since it was read (a pause and a resume): refused; at the new one, written.
      await setSchedulePaused(m, "s_tick", true, 2000);
      await setSchedulePaused(m, "s_tick", false, 2000);
      expect(await writeTick(ds, tick("s_tick", 0, 180_000, [240_000]), announce)).toBeNull();
      expect(await writeTick(ds, tick("s_tick", 2, 180_000, [240_000]), announce)).toHaveLength(1);
      // Paused (at its current revision): refused.
      await setSchedulePaused(m, "s_tick", true, 3000);
      expect(await writeTick(ds, tick("s_tick", 3, 240_000, [300_000]), announce)).toBeNull();
      // Another schedule's name: refused.
      expect(await writeTick(ds, tick("s_missing", 0, null, [60_000]), announce)).toBeNull();

      expect((await ticksOf("s_tick")).map((t) => t.runAt)).toEqual([60_000, 120_000, 180_000, 240_000]);
      expect(await one("s_tick")).toMatchObject({ lastTick: 240_000, paused: true, revision: 3 });
      expect(await ticksOf("s_missing")).toEqual([]);
      expect(announced).toBe(3);
    });

    it("writeTick is one transaction: a task row the database refuses leaves the schedule where it was", async () => {
      await insertSchedule(m, definition("s_tick"), 1000);
      const bad = tick("s_tick", 0, null, [60_000, 120_000]);
      bad.rows[1][0] = null; // type is NOT NULL
      let announced = 0;
      await expect(writeTick(ds, bad, () => void announced++)).rejects.toThrow();
      expect(await one("s_tick")).toMatchObject({ lastTick: null, revision: 0 });
      expect(await ticksOf("s_tick")).toEqual([]);
      expect(announced).toBe(0);
      // And it goes on from there.
      expect(await writeTick(ds, tick("s_tick", 0, null, [60_000]), () => void announced++)).toHaveLength(1);
      expect(announced).toBe(1);
      // Ticks passed over (catchUp "skip"): no task, and the schedule advances.
      expect(await writeTick(ds, { ...tick("s_tick", 0, 60_000, [600_000]), rows: [] }, () => void announced++)).toEqual([]);
      expect(await one("s_tick")).toMatchObject({ lastTick: 600_000 });
      expect((await ticksOf("s_tick")).map((t) => t.runAt)).toEqual([60_000]);
    });

    it("writeTick by several schedulers at once over the same tick: exactly one writes it", async () => {
      await insertSchedule(m, definition("s_race"), 1000);
      const results = await Promise.all(Array.from({ length: 4 }, () => writeTick(ds, tick("s_race", 0, null, [60_000, 120_000]), () => {})));
      const winners = results.filter((r) => r !== null);
      expect(winners).toHaveLength(1);
      expect(winners[0]).toHaveLength(2);
      expect((await ticksOf("s_race")).map((t) => t.id)).toEqual(winners[0]);
      expect(await one("s_race")).toMatchObject({ lastTick: 120_000 });
    });

    it("writeTick: a tick task the unique guard skips gets no id, and the schedule still advances", async () => {
      await ensureUniqueGuard(new UniqueGuardState(), ds); // (SQLite: TypeORM's table rebuild for the test columns dropped it)
      await insertSchedule(m, definition("s_unique"), 1000);
      const first = await writeTick(ds, tick("s_unique", 0, null, [60_000], { unique_key: "stmt_a:only" }), () => {});
      expect(first).toHaveLength(1);
      // The first tick's task is still pending: the second's is a duplicate.
      expect(await writeTick(ds, tick("s_unique", 0, 60_000, [120_000], { unique_key: "stmt_a:only" }), () => {})).toEqual([]);
      expect(await one("s_unique")).toMatchObject({ lastTick: 120_000 });
      expect((await ticksOf("s_unique")).map((t) => t.id)).toEqual(first);
    });

    it("recoverSchedule moves a last tick that is ahead back to now and deletes the pending tasks written for later ticks, once", async () => {
      await insertSchedule(m, definition("s_ahead"), 1000);
      await insertSchedule(m, definition("s_other"), 1000);
      await ds.query(`UPDATE ormq_schedules SET last_tick = 10000000 WHERE name = 's_ahead'`);
      const [ahead1, ahead2, past, atNow, finishedAhead, otherAhead] = await tasksA(6);
      await set(ahead1, `schedule_name = 's_ahead', created_at = 9000000`);
      await set(ahead2, `schedule_name = 's_ahead', created_at = 10000000`);
      await set(past, `schedule_name = 's_ahead', created_at = 4000000`);
      await set(atNow, `schedule_name = 's_ahead', created_at = 5000000`);
      await set(finishedAhead, `schedule_name = 's_ahead', created_at = 9000000, status = 'succeeded'`);
      await set(otherAhead, `schedule_name = 's_other', created_at = 9000000`);

      // A scheduler that read another revision, or another last tick: nothing.
      expect(await recoverSchedule(ds, { name: "s_ahead", revision: 1, lastTick: 10_000_000 }, 5_000_000)).toBeNull();
      expect(await recoverSchedule(ds, { name: "s_ahead", revision: 0, lastTick: 9_999_999 }, 5_000_000)).toBeNull();
      expect(await one("s_ahead")).toMatchObject({ lastTick: 10_000_000 });
      expect(await countUnfinishedTasks(ds, {})).toBe(5);

      expect(await recoverSchedule(ds, { name: "s_ahead", revision: 0, lastTick: 10_000_000 }, 5_000_000)).toBe(2);
      expect(await one("s_ahead")).toMatchObject({ lastTick: 5_000_000, revision: 0 });
      expect(ids(await ds.query<{ id: unknown }[]>(`SELECT id FROM ormq_tasks`)).sort(byId)).toEqual([past, atNow, finishedAhead, otherAhead]);
      // Another scheduler that read the same row: it was done.
      expect(await recoverSchedule(ds, { name: "s_ahead", revision: 0, lastTick: 10_000_000 }, 5_000_000)).toBeNull();
      expect(await one("s_other")).toMatchObject({ lastTick: null });
    });

    it("tryTickRows inserts a tick's rows and rolls them back, and throws what the database refuses", async () => {
      await tasksA(1);
      const rows = tick("s_try", 0, null, [60_000, 120_000]);
      await expect(tryTickRows(ds, rows.columns, rows.rows)).resolves.toBeUndefined();
      expect(await countUnfinishedTasks(ds, {})).toBe(1);
      expect(await ticksOf("s_try")).toEqual([]);
      const bad = tick("s_try", 0, null, [60_000]);
      bad.rows[0][0] = null; // type is NOT NULL
      await expect(tryTickRows(ds, bad.columns, bad.rows)).rejects.toThrow();
      await expect(tryTickRows(ds, [...rows.columns, "no_such_column"], [[...rows.rows[0], 1]])).rejects.toThrow();
      expect(await countUnfinishedTasks(ds, {})).toBe(1);
      // The connection is usable afterwards.
      await insertSchedule(m, definition("s_try"), 1000);
      expect(await writeTick(ds, tick("s_try", 0, null, [60_000]), () => {})).toHaveLength(1);
    });
  });

  describe("controls: upsertControl and readControlRows", () => {
    it("writes a row, changes only the fields given, and reads back the rows that say something", async () => {
      await upsertControl(m, "queue", "sq_a", { paused: true }, 1000);
      expect(await readControlRows(m)).toEqual([{ scope: "queue", name: "sq_a", paused: true, concurrency: null, rate: null, updatedAt: 1000 }]);

      await upsertControl(m, "queue", "sq_a", { concurrency: 3 }, 2000);
      await upsertControl(m, "type", "stmt_b", { paused: true }, 2500);
      await upsertControl(m, "queue", "sq_b", { rate: { max: 10, perMs: 60_000 } }, 3000);
      expect(await readControlRows(m)).toEqual([
        { scope: "queue", name: "sq_a", paused: true, concurrency: 3, rate: null, updatedAt: 2000 },
        { scope: "queue", name: "sq_b", paused: false, concurrency: null, rate: { max: 10, perMs: 60_000 }, updatedAt: 3000 },
        { scope: "type", name: "stmt_b", paused: true, concurrency: null, rate: null, updatedAt: 2500 },
      ]);

      // Overwrites: each field changed on its own, the others kept.
      await upsertControl(m, "queue", "sq_a", { paused: false }, 4000);
      await upsertControl(m, "queue", "sq_b", { rate: { max: 2, perMs: 1_000 }, concurrency: 7 }, 4100);
      await upsertControl(m, "type", "stmt_b", { rate: null }, 4200);
      expect(await readControlRows(m)).toEqual([
        { scope: "queue", name: "sq_a", paused: false, concurrency: 3, rate: null, updatedAt: 4000 },
        { scope: "queue", name: "sq_b", paused: false, concurrency: 7, rate: { max: 2, perMs: 1_000 }, updatedAt: 4100 },
        { scope: "type", name: "stmt_b", paused: true, concurrency: null, rate: null, updatedAt: 4200 },
      ]);

      // A row that says nothing any more (or never did) is kept but not read back.
      await upsertControl(m, "queue", "sq_a", { concurrency: null }, 5000);
      await upsertControl(m, "queue", "sq_b", { rate: null, concurrency: null }, 5000);
      await upsertControl(m, "queue", "sq_c", { paused: false }, 5000);
      expect(await readControlRows(m)).toEqual([{ scope: "type", name: "stmt_b", paused: true, concurrency: null, rate: null, updatedAt: 4200 }]);
      expect(Number((await ds.query(`SELECT COUNT(*) AS n FROM ormq_controls`))[0].n)).toBe(4);
    });
  });

  describe("maintenanceLease", () => {
    const JOB = "stmt_job";
    const h1 = leaseHolder("worker-1");
    const h2 = leaseHolder("worker-2");
    const stored = async (job = JOB) => (await ds.query<{ value: string }[]>(`SELECT value FROM ormq_meta WHERE ${KEY} = 'lease:${job}'`))[0]?.value;

    it("leaseHolder is a fixed 32-hex-digit token per worker id", () => {
      expect(h1).toMatch(/^[0-9a-f]{32}$/);
      expect(leaseHolder("worker-1")).toBe(h1);
      expect(h2).not.toBe(h1);
    });

    it("holdLease: the first holder wins; another is refused until the lease expires by `now`; the holder renews", async () => {
      expect(await holdLease(m, JOB, h1, 1000, 500)).toBe(true);
      expect(await stored()).toBe(`1500:${h1}`);
      expect(await holdLease(m, JOB, h2, 1200, 500)).toBe(false);
      expect(await holdLease(m, JOB, h2, 1499, 500)).toBe(false);
      expect(await stored()).toBe(`1500:${h1}`);
      expect(await holdLease(m, JOB, h1, 1400, 500)).toBe(true); // renewed
      expect(await stored()).toBe(`1900:${h1}`);
      expect(await holdLease(m, JOB, h1, 1400, 500)).toBe(true); // renewed to the value it has: still held
      expect(await stored()).toBe(`1900:${h1}`);
      expect(await holdLease(m, JOB, h2, 1899, 500)).toBe(false);
      expect(await holdLease(m, JOB, h2, 1900, 500)).toBe(true); // expired at 1900
      expect(await stored()).toBe(`2400:${h2}`);
      expect(await holdLease(m, JOB, h1, 2000, 500)).toBe(false);
      // Each job has its own lease.
      expect(await holdLease(m, "stmt_other", h1, 2000, 500)).toBe(true);
      expect(await stored("stmt_other")).toBe(`2500:${h1}`);
      expect(await stored()).toBe(`2400:${h2}`);
    });

    it("two takers at once, of a free lease or of an expired one: exactly one holds it", async () => {
      const race = async (now: number) => {
        const won = await Promise.all([holdLease(m, JOB, h1, now, 500), holdLease(m, JOB, h2, now, 500)]);
        expect(won.filter(Boolean)).toHaveLength(1);
        expect(await stored()).toBe(`${now + 500}:${won[0] ? h1 : h2}`);
      };
      await race(1000);
      await race(5000);
    });

    it("releaseLease gives the lease up only for its holder, and another takes it at once", async () => {
      expect(await holdLease(m, JOB, h1, 1000, 60_000)).toBe(true);
      await releaseLease(m, JOB, h2); // not h2's
      expect(await stored()).toBe(`61000:${h1}`);
      expect(await holdLease(m, JOB, h2, 2000, 500)).toBe(false);
      await releaseLease(m, JOB, h1);
      expect(await stored()).toBe(`0:${h1}`);
      expect(await holdLease(m, JOB, h2, 2000, 500)).toBe(true);
      expect(await stored()).toBe(`2500:${h2}`);
      await releaseLease(m, "stmt_never", h1); // no lease: nothing
      expect(await stored("stmt_never")).toBeUndefined();
    });

    it("holdLease takes over a stored value that is not <until>:<holder>, and respects a valid one", async () => {
      await holdLease(m, JOB, h2, 0, 1);
      for (const hostile of ["garbage", "", ":someone", "1.5:someone", "NaN:someone", "99999999999999999999:someone", "Infinity:someone"]) {
        await ds.query(`UPDATE ormq_meta SET value = '${hostile}' WHERE ${KEY} = 'lease:${JOB}'`);
        expect([hostile, await holdLease(m, JOB, h1, 1000, 500)]).toEqual([hostile, true]);
        expect(await stored()).toBe(`1500:${h1}`);
      }
      await ds.query(`UPDATE ormq_meta SET value = '99999999999999:someone' WHERE ${KEY} = 'lease:${JOB}'`);
      expect(await holdLease(m, JOB, h1, 1000, 500)).toBe(false);
      expect(await stored()).toBe("99999999999999:someone");
    });

    it("parseLease reads <until>:<holder> and refuses anything else", () => {
      expect(parseLease("1500:abc")).toEqual({ until: 1500, holder: "abc" });
      expect(parseLease("0:")).toEqual({ until: 0, holder: "" });
      expect(parseLease("7:a:b")).toEqual({ until: 7, holder: "a:b" });
      expect(parseLease(`${Number.MAX_SAFE_INTEGER}:h`)).toEqual({ until: Number.MAX_SAFE_INTEGER, holder: "h" });
      for (const hostile of [null, undefined, 42, { until: 1, holder: "h" }, ["1:h"], "", "abc", ":h", "x:h", "1.5:h", "NaN:h", "Infinity:h", "1e400:h", "99999999999999999999:h"]) {
        expect([hostile, parseLease(hostile)]).toEqual([hostile, null]);
      }
    });
  });

  describe("uniqueTasks", () => {
    it("standingTasks: unfinished holders of a key, and any holder of a window, unfinished ones first", async () => {
      const [a, b, c, d, e] = await tasksA(5);
      await set(a, `unique_key = 'k1'`);
      await set(b, `unique_key = 'k1', unique_window = 'k1@0', status = 'succeeded'`);
      await set(c, `unique_key = 'k2', status = 'running'`);
      await set(d, `unique_key = 'k3', unique_window = 'k3@0', status = 'failed'`);
      await set(e, `unique_key = 'k4'`);
      const standing = await standingTasks(m, [
        { key: "k1", window: "k1@0" },
        { key: "k2", window: null },
        { key: "k3", window: null },
      ]);
      expect(standing).toHaveLength(3);
      expect(standing.slice(0, 2).sort((x, y) => byId(x.id, y.id))).toEqual([
        { id: a, status: "pending", uniqueKey: "k1" },
        { id: c, status: "running", uniqueKey: "k2" },
      ]);
      expect(standing[2]).toEqual({ id: b, status: "succeeded", uniqueKey: "k1" });
      expect(await standingTasks(m, [{ key: "k3", window: "k3@0" }])).toEqual([{ id: d, status: "failed", uniqueKey: "k3" }]);
      expect(await standingTasks(m, [{ key: "k5", window: "k5@0" }])).toEqual([]);
      expect(await standingTasks(m, [])).toEqual([]);
    });

    it("uniqueKeysByIds maps the ids that exist to their keys", async () => {
      const [a, b] = await tasksA(2);
      await set(a, `unique_key = 'k1'`);
      await set(b, `unique_key = 'k2', status = 'succeeded'`);
      expect(await uniqueKeysByIds(m, [a, b, "999999999"])).toEqual(
        new Map([
          [a, "k1"],
          [b, "k2"],
        ]),
      );
      expect(await uniqueKeysByIds(m, [])).toEqual(new Map());
    });

    it("replacePending writes the duplicate's values into a pending task with the key, and into nothing else", async () => {
      const [pending, running] = await tasksA(2, "old");
      await set(pending, `unique_key = 'k1'`);
      await set(running, `unique_key = 'k2', status = 'running'`);
      const labelAndRunAt = async (id: string) => {
        const row = await taskRow(ds, id);
        return [row!.label, Number(row!.run_at)];
      };
      const [, runningRunAt] = await labelAndRunAt(running);

      expect(await replacePending(m, StmtA, pending, "k1", { label: "new", runAt: new Date(7000), updatedAt: new Date(7000) })).toBe(true);
      expect(await labelAndRunAt(pending)).toEqual(["new", 7000]);
      expect(await replacePending(m, StmtA, pending, "k2", { label: "other key" })).toBe(false);
      expect(await replacePending(m, StmtA, running, "k2", { label: "running" })).toBe(false);
      expect(await labelAndRunAt(running)).toEqual(["old", runningRunAt]);
      expect(await replacePending(m, StmtA, "999999999", "k1", { label: "missing" })).toBe(false);
      await set(pending, `status = 'succeeded'`);
      expect(await replacePending(m, StmtA, pending, "k1", { label: "finished" })).toBe(false);
      expect(await labelAndRunAt(pending)).toEqual(["new", 7000]);
    });
  });
});
