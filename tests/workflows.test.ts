/**
 * Workflows, first part: a task's own writes and its children commit with its attempt's success
 * (ctx.transaction, ctx.enqueue), and the parent/children relation.
 */
import { ChildEntity, Column, Entity, PrimaryGeneratedColumn, type BaseEntity, type DataSource } from "typeorm";
import { sweepDependencies } from "../src/workflow/dependencies";
import { AttemptLostError, BaseTaskEntity, DependencyError, enqueueBatch, enqueueMany, ormqFor, processN, type TaskContext } from "../src";
import { cancelTask, cancelWorkflow, prune, rescueExpiredTasks, retryTask, showTask, TaskEventEntity } from "../src/admin";
import { TaskDependencyEntity } from "../entities/TaskDependencyEntity";
import { memoryLogger, openDataSource, type TestDb, useTestDatabase, WITH_MARIADB } from "./support/db";
import { makeAllDue, until } from "./support/helpers";

/** What tasks write in their transactions. */
@Entity("wf_ledger")
class Ledger {
  @PrimaryGeneratedColumn()
  id!: number;
  @Column({ type: "varchar", length: 64 })
  taskId!: string;
  @Column({ type: "integer" })
  attempt!: number;
}

@ChildEntity("wf_step")
class Step extends BaseTaskEntity {
  @Column({ type: "varchar", length: 32, nullable: true })
  step!: string | null;
  run() {
    return this.step;
  }
}

/** Gives two children, then fails its first attempt when asked to. */
@ChildEntity("wf_fan_out")
class FanOut extends BaseTaskEntity {
  static maxAttempts = 3;
  @Column({ type: "varchar", length: 32, nullable: true })
  mode!: "fail-first" | "hang" | "after-commit" | null;

  async run(ctx: TaskContext) {
    ctx.enqueue([Step.create({ step: `a${ctx.attempt}` }), Step.create({ step: `b${ctx.attempt}` })]);
    if (this.mode === "fail-first" && ctx.attempt === 1) throw new Error("first attempt fails after giving children");
    if (this.mode === "hang" && ctx.attempt === 1) {
      // Returns (as if it had finished) once the timeout aborted it: too late to commit anything.
      await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve()));
    }
    if (this.mode === "after-commit") {
      await ctx.transaction(async (m) => m.insert(Ledger, { taskId: this.id, attempt: ctx.attempt }));
      ctx.enqueue(Step.create({ step: "too late" }));
    }
    return "fanned out";
  }
}

/** Writes a ledger row in ctx.transaction; `mode` says what goes wrong. */
@ChildEntity("wf_transfer")
class Transfer extends BaseTaskEntity {
  static maxAttempts = 3;
  static gate: Promise<void> = Promise.resolve();
  static entered: string[] = [];
  @Column({ type: "varchar", length: 32, nullable: true })
  mode!: "ok" | "throw-inside" | "throw-after" | "wait-first" | null;

  async run(ctx: TaskContext) {
    if (this.mode === "wait-first" && ctx.attempt === 1) {
      Transfer.entered.push(this.id);
      await Transfer.gate;
    }
    const value = await ctx.transaction(async (m) => {
      await m.insert(Ledger, { taskId: this.id, attempt: ctx.attempt });
      ctx.enqueue(Step.create({ step: "inside" }));
      if (this.mode === "throw-inside" && ctx.attempt === 1) throw new Error("rolled back on purpose");
      return { paid: true, attempt: ctx.attempt };
    });
    if (this.mode === "throw-after") throw new Error("thrown after the commit");
    return value;
  }
}

/** Writes a ledger row, then sits idle in its transaction for `IdleInside.idleMs` before returning. */
@ChildEntity("wf_idle_inside")
class IdleInside extends BaseTaskEntity {
  static maxAttempts = 1;
  static idleMs = 0;
  async run(ctx: TaskContext) {
    return ctx.transaction(async (m) => {
      await m.insert(Ledger, { taskId: this.id, attempt: ctx.attempt });
      await new Promise((resolve) => setTimeout(resolve, IdleInside.idleMs));
      return "committed";
    });
  }
}

/** keepSucceeded = false: the success deletes the row, in the same transaction as its writes. */
@ChildEntity("wf_ephemeral")
class EphemeralTransfer extends BaseTaskEntity {
  static keepSucceeded = false;
  async run(ctx: TaskContext) {
    return ctx.transaction(async (m) => m.insert(Ledger, { taskId: this.id, attempt: ctx.attempt }).then(() => "gone"));
  }
}

/** Gives ctx.enqueue what it must refuse, and returns the errors. */
@ChildEntity("wf_bad_children")
class BadChildren extends BaseTaskEntity {
  @Column({ type: "varchar", length: 32, nullable: true })
  savedId!: string | null;
  async run(ctx: TaskContext) {
    const saved = await ctx.manager.findOneByOrFail(Step, { id: this.savedId! });
    const errors: string[] = [];
    for (const bad of [{ step: "plain object" }, saved]) {
      try {
        ctx.enqueue(bad as never);
      } catch (err) {
        errors.push(`${(err as Error).name}: ${(err as Error).message}`);
      }
    }
    return errors;
  }
}

/** When each node started, and whether its dependencies had all finished by then (read in run()). */
const started: { name: string; dependenciesDone: boolean }[] = [];

/** A node of a DAG: records its start, returns its name and its dependencies' results. */
@ChildEntity("wf_node")
class Node extends BaseTaskEntity {
  static maxAttempts = 1;
  @Column({ type: "varchar", length: 32, nullable: true })
  name!: string | null;
  @Column({ type: "varchar", length: 16, nullable: true })
  behaviour!: "fail" | "fail-once" | null;

  async run(ctx: TaskContext) {
    const dependencies = await ctx.dependencies<Node>();
    started.push({ name: this.name!, dependenciesDone: dependencies.every((d) => d.status === "succeeded") });
    if (this.behaviour === "fail" || (this.behaviour === "fail-once" && ctx.attempt === 1)) throw new Error(`${this.name} fails`);
    return { name: this.name, after: dependencies.map((d) => d.name).sort() };
  }
}

/** Cancelled, not failed, when a dependency fails. */
@ChildEntity("wf_cancel_node")
class CancelNode extends Node {
  static onDependencyFailure = "cancel" as const;
}

/** Runs anyway once its dependencies are done, whatever became of them. */
@ChildEntity("wf_run_node")
class RunAnywayNode extends Node {
  static onDependencyFailure = "run" as const;
}

/** A batch's callback: returns its counts (its class keeps the default "fail" policy: a batch's edges wait only for the end). */
@ChildEntity("wf_batch_done")
class BatchDone extends BaseTaskEntity {
  static runs = 0;
  async run(ctx: TaskContext) {
    BatchDone.runs++;
    return ctx.dependencyCounts();
  }
}

const entities = [Ledger, Step, FanOut, Transfer, IdleInside, EphemeralTransfer, BadChildren, Node, CancelNode, RunAnywayNode, BatchDone];

describe.each(WITH_MARIADB)("workflows on %s: writes and children commit with the attempt's success", (dialect) => {
  let ds: DataSource;
  useTestDatabase(dialect, (opened) => ({ ds } = opened), entities);
  const quiet = () => ({ dataSource: ds, logger: memoryLogger().logger });
  const ledger = async (taskId: string) => (await ds.getRepository(Ledger).find({ where: { taskId }, order: { id: "ASC" } })).map((r) => r.attempt);
  const steps = async (parentId: string) => (await ds.getRepository(Step).find({ where: { parentId }, order: { id: "ASC" } })).map((s) => s.step);

  beforeEach(async () => {
    await ds.query("DELETE FROM wf_ledger");
    await ds.query("DELETE FROM ormq_tasks");
    await ds.query("DELETE FROM ormq_task_events");
    Transfer.gate = Promise.resolve();
    Transfer.entered = [];
  });

  it("a failed attempt's children never exist; the retried attempt gives them again, from scratch", async () => {
    const parent = await FanOut.create({ mode: "fail-first" }).save();
    await processN(FanOut, 1, quiet());
    expect(await ds.getRepository(Step).count()).toBe(0);
    await makeAllDue(ds);
    await processN(FanOut, 1, quiet());
    expect(await steps(parent.id)).toEqual(["a2", "b2"]);
    const loaded = await ds.getRepository(FanOut).findOneOrFail({ where: { id: parent.id }, relations: { children: true } });
    expect(loaded.status).toBe("succeeded");
    expect(loaded.result).toBe("fanned out");
    expect(loaded.children!.map((c) => c.constructor)).toEqual([Step, Step]);
    const child = await ds.getRepository(Step).findOneOrFail({ where: { parentId: parent.id, step: "a2" }, relations: { parent: true } });
    expect(child.parent).toBeInstanceOf(FanOut);
    expect(child.parent!.id).toBe(parent.id);
    // The children are ordinary tasks: a worker runs them.
    const summary = await processN(Step, 10, quiet());
    expect(summary.succeeded).toBe(2);
  });

  it("a timed-out attempt's children never exist", async () => {
    const parent = await FanOut.create({ mode: "hang" }).withTimeout(200).save();
    const summary = await processN(FanOut, 1, quiet());
    expect(summary.retried).toBe(1);
    expect(await ds.getRepository(Step).count()).toBe(0);
    await makeAllDue(ds);
    await processN(FanOut, 1, quiet());
    expect(await steps(parent.id)).toEqual(["a2", "b2"]);
  });

  it("ctx.transaction commits the task's writes, its children and its success together", async () => {
    const task = await Transfer.create({ mode: "ok" }).save();
    const summary = await processN(Transfer, 1, quiet());
    expect(summary.succeeded).toBe(1);
    const row = await ds.getRepository(Transfer).findOneByOrFail({ id: task.id });
    expect(row.status).toBe("succeeded");
    expect(row.result).toEqual({ paid: true, attempt: 1 });
    expect(row.lockedBy).toBeNull();
    expect(row.finishedAt).toBeInstanceOf(Date);
    expect(await ledger(task.id)).toEqual([1]);
    expect(await steps(task.id)).toEqual(["inside"]);
    const events = await ds.getRepository(TaskEventEntity).find({ where: { taskId: task.id } });
    expect(events.map((e) => [e.kind, e.attempt, e.startedAt instanceof Date])).toEqual([["succeeded", 1, true]]);
  });

  // A worker cut off from the database between its guarded write and the commit must not hold the
  // task's row for ever (the many-hosts test found it): the server ends a transaction left idle
  // for a lease. PostgreSQL only; MySQL has no per-transaction limit (docs/mysql.md).
  const onPostgres = dialect === "postgres" ? it : () => undefined;
  onPostgres("a transaction left idle for a whole lease is ended by the server: nothing of it commits, and the row is not held", async () => {
    IdleInside.idleMs = 1_500;
    const task = await IdleInside.create({}).save();
    const { logger } = memoryLogger();
    const summary = await processN(IdleInside, 1, { dataSource: ds, logger, leaseMs: 1_000, heartbeatIntervalMs: 300 });
    expect(summary.failed).toBe(1);
    const row = await ds.getRepository(IdleInside).findOneByOrFail({ id: task.id });
    expect(row.status).toBe("failed");
    expect(row.lastError).toMatch(/^AttemptCommitError: ctx.transaction: the database ended task \d+.s transaction, so nothing of it committed: it sat idle between two statements for the worker.s lease \(1000 ms\)/);
    expect(await ledger(task.id)).toEqual([]);
    // Within the lease it commits as usual.
    IdleInside.idleMs = 50;
    const quick = await IdleInside.create({}).save();
    expect((await processN(IdleInside, 1, { dataSource: ds, logger, leaseMs: 1_000, heartbeatIntervalMs: 300 })).succeeded).toBe(1);
    expect(await ledger(quick.id)).toEqual([1]);
  });

  it("a transaction that throws leaves none of its writes nor children, and the attempt fails as usual", async () => {
    const task = await Transfer.create({ mode: "throw-inside" }).save();
    expect((await processN(Transfer, 1, quiet())).retried).toBe(1);
    expect(await ledger(task.id)).toEqual([]);
    expect(await steps(task.id)).toEqual([]);
    expect((await ds.getRepository(Transfer).findOneByOrFail({ id: task.id })).lastError).toContain("rolled back on purpose");
    await makeAllDue(ds);
    expect((await processN(Transfer, 1, quiet())).succeeded).toBe(1);
    expect(await ledger(task.id)).toEqual([2]);
    expect(await steps(task.id)).toEqual(["inside"]);
  });

  it("after the commit the attempt has succeeded: a later throw is logged, not retried, and no hook runs", async () => {
    const task = await Transfer.create({ mode: "throw-after" }).save();
    const { logger, lines } = memoryLogger();
    const summary = await processN(Transfer, 1, { dataSource: ds, logger });
    expect(summary).toMatchObject({ succeeded: 1, retried: 0, failed: 0 });
    const row = await ds.getRepository(Transfer).findOneByOrFail({ id: task.id });
    expect([row.status, row.attempts, row.lastError]).toEqual(["succeeded", 1, null]);
    expect(row.result).toEqual({ paid: true, attempt: 1 });
    expect(await ledger(task.id)).toEqual([1]);
    expect(lines.some((l) => l.level === "warn" && l.msg?.includes("after ctx.transaction committed"))).toBe(true);
  });

  it("ctx.enqueue after the commit throws, and the success that was committed stands", async () => {
    const task = await FanOut.create({ mode: "after-commit" }).save();
    await processN(FanOut, 1, quiet());
    const row = await ds.getRepository(FanOut).findOneByOrFail({ id: task.id });
    expect(row.status).toBe("succeeded");
    expect(await ledger(task.id)).toEqual([1]);
    // The two given before the transaction committed with it; the one after was refused.
    expect(await steps(task.id)).toEqual(["a1", "b1"]);
  });

  it("an attempt that lost its task before its commit writes nothing: AttemptLostError, and the next attempt writes once", async () => {
    let release = () => {};
    Transfer.gate = new Promise<void>((resolve) => (release = resolve));
    const task = await Transfer.create({ mode: "wait-first" }).save();
    const { logger, lines } = memoryLogger();
    const first = processN(Transfer, 1, { dataSource: ds, logger });
    await until("the first attempt waits", () => Transfer.entered.length === 1);
    // Its lease runs out and the rescue returns the task to the queue while run() still works.
    await ds.query(`UPDATE ormq_tasks SET locked_until = 1 WHERE id = ${task.id}`);
    expect((await rescueExpiredTasks({ dataSource: ds, logger: memoryLogger().logger })).map((r) => r.id)).toEqual([task.id]);
    release();
    await first;
    expect(await ledger(task.id)).toEqual([]);
    expect(await steps(task.id)).toEqual([]);
    expect(lines.some((l) => l.level === "warn" && String((l.obj as { err?: unknown }).err).includes(AttemptLostError.name))).toBe(true);
    await makeAllDue(ds);
    expect((await processN(Transfer, 1, quiet())).succeeded).toBe(1);
    expect(await ledger(task.id)).toEqual([2]);
  });

  it("a class that keeps no succeeded tasks: its row goes in the same transaction as its writes", async () => {
    const task = await EphemeralTransfer.create({}).save();
    expect((await processN(EphemeralTransfer, 1, quiet())).succeeded).toBe(1);
    expect(await ds.getRepository(EphemeralTransfer).countBy({ id: task.id })).toBe(0);
    expect(await ledger(task.id)).toEqual([1]);
  });

  it("ctx.enqueue refuses what is not an unsaved task instance, with an error that names it", async () => {
    const saved = await Step.create({ step: "saved" }).save();
    const task = await BadChildren.create({ savedId: saved.id }).save();
    await processN(BadChildren, 1, quiet());
    const row = await ds.getRepository(BadChildren).findOneByOrFail({ id: task.id });
    expect(row.result).toEqual([
      `AttemptCommitError: ctx.enqueue: item 0 is not an instance of a task class (use SomeTask.create({...}))`,
      `AttemptCommitError: ctx.enqueue: item 0 (Step) was already saved (id ${saved.id})`,
    ]);
    expect(await ds.getRepository(Step).count()).toBe(1);
  });
});

describe.each(WITH_MARIADB)("workflows on %s: dependencies", (dialect) => {
  let ds: DataSource;
  let db: TestDb;
  useTestDatabase(dialect, (opened) => ({ ds, db } = opened), entities);
  const quiet = () => ({ dataSource: ds, logger: memoryLogger().logger });
  const node = (name: string, dependsOn: (BaseTaskEntity | string)[] = [], behaviour: "fail" | "fail-once" | null = null) => Node.create({ name, behaviour, dependsOn });
  const statusOf = async (task: { id: string }) => (await ds.getRepository(BaseTaskEntity).findOneByOrFail({ id: task.id })).status;

  beforeEach(async () => {
    await ds.query("DELETE FROM ormq_tasks");
    await ds.query("DELETE FROM ormq_task_dependencies");
    started.length = 0;
  });

  it("a workflow enqueued through another DataSource (another process) is settled by the worker as well (first: this client has enqueued no workflow yet)", async () => {
    // A client that has not enqueued any workflow itself first reads whether the database holds
    // dependencies at all (see settler.ts), and then looks after each outcome.
    const other = await openDataSource(db, entities, { migrationsRun: false }, false);
    try {
      const first = await other.getRepository(Node).save(node("first"));
      const then = await other.getRepository(Node).save(node("then", [first]));
      expect(await statusOf(then)).toBe("waiting");
      const summary = await processN(Node, 10, quiet());
      expect(summary.succeeded).toBe(2);
      expect(started.map((s) => s.name)).toEqual(["first", "then"]);
    } finally {
      await other.destroy();
      // Opening it bound the entity classes to it (TypeORM's BaseEntity): back to this suite's.
      for (const cls of [BaseTaskEntity, ...entities]) if (cls.prototype instanceof BaseTaskEntity || cls === BaseTaskEntity) (cls as unknown as typeof BaseEntity).useDataSource(ds);
    }
  });

  it("a task waits until every dependency has succeeded, then runs with their results; tasks saved together may depend on each other", async () => {
    const a = node("a");
    const b = node("b");
    const c = node("c", [a, b]);
    const d = node("d", [c]);
    await ds.getRepository(Node).save([d, c, b, a]); // in any order: the edges are written at the commit
    expect(await Promise.all([a, b, c, d].map(statusOf))).toEqual(["pending", "pending", "waiting", "waiting"]);
    const summary = await processN(Node, 10, quiet());
    expect(summary.succeeded).toBe(4);
    expect(started.map((s) => s.name).slice(2)).toEqual(["c", "d"]);
    expect(started.every((s) => s.dependenciesDone)).toBe(true);
    expect((await ds.getRepository(Node).findOneByOrFail({ id: c.id })).result).toEqual({ name: "c", after: ["a", "b"] });
  });

  it("a dependency given by id, already succeeded, or saved earlier: the task is pending at once when nothing is left to wait for", async () => {
    const done = await node("done").save();
    await processN(Node, 1, quiet());
    const later = await node("later", [done.id]).save();
    expect(await statusOf(later)).toBe("pending");
    const open = await node("open").save();
    const waits = await node("waits", [open, done]).save();
    expect(await statusOf(waits)).toBe("waiting");
    await processN(Node, 10, quiet());
    expect(await Promise.all([later, open, waits].map(statusOf))).toEqual(["succeeded", "succeeded", "succeeded"]);
  });

  it("enqueueMany and ctx.enqueue take dependsOn too", async () => {
    const first = node("first");
    const second = node("second", [first]);
    await enqueueMany([second, first], { dataSource: ds });
    expect(await statusOf(second)).toBe("waiting");
    await processN(Node, 10, quiet());
    expect(started.map((s) => s.name)).toEqual(["first", "second"]);
  });

  it("a dependency that fails for good settles its dependents by their class: fail (and theirs in turn), cancel, or run anyway", async () => {
    const bad = node("bad", [], "fail");
    const failing = node("failing", [bad]);
    const below = node("below", [failing]);
    const cancelling = CancelNode.create({ name: "cancelling", dependsOn: [bad] });
    const anyway = RunAnywayNode.create({ name: "anyway", dependsOn: [bad] });
    await ds.getRepository(Node).save([bad, failing, below, cancelling, anyway]);
    await processN(Node, 10, quiet());
    expect(await Promise.all([bad, failing, below, cancelling, anyway].map(statusOf))).toEqual(["failed", "failed", "failed", "cancelled", "succeeded"]);
    expect(started.map((s) => s.name).sort()).toEqual(["anyway", "bad"]);
    const failed = await ds.getRepository(Node).findOneByOrFail({ id: failing.id });
    expect(failed.lastError).toBe(`DependencyFailedError: task ${bad.id} it depends on failed`);
    expect((await ds.getRepository(Node).findOneByOrFail({ id: below.id })).lastError).toBe(`DependencyFailedError: task ${failing.id} it depends on failed`);
    expect(failed.attempts).toBe(0); // it never ran
  });

  it("retrying a failed node makes what its failure settled wait for it again, but not what another failure settled too", async () => {
    const bad = node("bad", [], "fail-once");
    const failing = node("failing", [bad]);
    const below = node("below", [failing]);
    const cancelling = CancelNode.create({ name: "cancelling", dependsOn: [bad] });
    const anyway = RunAnywayNode.create({ name: "anyway", dependsOn: [bad] });
    const other = node("other", [], "fail");
    const blocked = node("blocked", [bad, other]);
    await ds.getRepository(Node).save([bad, failing, below, cancelling, anyway, other, blocked]);
    await processN(Node, 10, quiet());
    const all = [bad, failing, below, cancelling, anyway, other, blocked];
    expect(await Promise.all(all.map(statusOf))).toEqual(["failed", "failed", "failed", "cancelled", "succeeded", "failed", "failed"]);
    started.length = 0;

    expect(await retryTask(bad.id, { dataSource: ds })).toEqual({ outcome: "requeued", id: bad.id });
    expect(await Promise.all(all.map(statusOf))).toEqual(["pending", "waiting", "waiting", "waiting", "succeeded", "failed", "failed"]);
    await processN(Node, 10, quiet());
    expect(await Promise.all(all.map(statusOf))).toEqual(["succeeded", "succeeded", "succeeded", "succeeded", "succeeded", "failed", "failed"]);
    // In order, each after its dependencies, and only those that waited again.
    const order = started.map((s) => s.name);
    expect(order.sort()).toEqual(["bad", "below", "cancelling", "failing"]);
    expect(started.every((s) => s.dependenciesDone)).toBe(true);
    expect(started.findIndex((s) => s.name === "bad")).toBeLessThan(started.findIndex((s) => s.name === "failing"));
    expect(started.findIndex((s) => s.name === "failing")).toBeLessThan(started.findIndex((s) => s.name === "below"));
    expect((await ds.getRepository(Node).findOneByOrFail({ id: below.id })).result).toEqual({ name: "below", after: ["failing"] });
  });

  it("cancelWorkflow cancels a task and everything below it (children and dependents, all the way down), and nothing else", async () => {
    const done = await node("done").save();
    await processN(Node, 1, quiet());
    const root = await node("root", [done]).save();
    const b = await node("b", [root]).save();
    const c = await node("c", [b]).save();
    const d = await node("d", [root, c]).save();
    const child = await Step.create({ step: "child", parentId: c.id }).save();
    const grandchild = await node("grandchild", [child]).save();
    const unrelated = await node("unrelated", [done]).save();
    // What showTask (ormq show, the dashboard) says of it first.
    const view = (await showTask(root.id, { dataSource: ds }))!.workflow!;
    expect(view.parent).toBeNull();
    expect(view.dependencies).toEqual({ total: 1, tasks: [{ id: done.id, type: "wf_node", status: "succeeded", edge: "succeeded" }] });
    expect(view.dependents).toEqual({ total: 2, tasks: [b, d].map((t) => ({ id: t.id, type: "wf_node", status: "waiting", edge: "open" })) });
    expect(view.below).toEqual({ total: 5, byStatus: { waiting: 4, pending: 1 }, complete: true });
    expect((await showTask(child.id, { dataSource: ds }))!.workflow!.parent).toEqual({ id: c.id, type: "wf_node", status: "waiting" });
    expect((await showTask(unrelated.id, { dataSource: ds }))!.workflow!.below.total).toBe(0);
    const result = await cancelWorkflow(root.id, { dataSource: ds, reason: "order withdrawn" });
    expect(result).toEqual({ id: root.id, found: true, tasks: 6, cancelled: 6, cancelRequested: 0 });
    expect(await Promise.all([done, root, b, c, d, child, grandchild, unrelated].map(statusOf))).toEqual(["succeeded", "cancelled", "cancelled", "cancelled", "cancelled", "cancelled", "cancelled", "pending"]);
    expect((await ds.getRepository(Node).findOneByOrFail({ id: d.id })).lastError).toBe("cancelled: order withdrawn");
    // Their edges record it, and nothing of the workflow runs.
    const edges = await ds.getRepository(TaskDependencyEntity).find({ where: { taskId: d.id } });
    expect(edges.map((e) => e.state)).toEqual(["cancelled", "cancelled"]);
    await processN(Node, 10, quiet());
    expect(started.map((s) => s.name)).toEqual(["done", "unrelated"]);
    expect(await cancelWorkflow(root.id, { dataSource: ds })).toEqual({ id: root.id, found: true, tasks: 6, cancelled: 0, cancelRequested: 0 });
    expect(await cancelWorkflow("987654321", { dataSource: ds })).toEqual({ id: "987654321", found: false, tasks: 0, cancelled: 0, cancelRequested: 0 });
  });

  it("prune deletes a pruned task's own edges, and keeps the edges to it while their dependent stands", async () => {
    const a = await node("a").save();
    const b = await node("b", [a]).save();
    await processN(Node, 2, quiet());
    const c = await node("c", [a, b]).save(); // waits for nothing: both succeeded; not finished itself
    const edges = async () => (await ds.getRepository(TaskDependencyEntity).find({ order: { taskId: "ASC", dependsOn: "ASC" } })).map((e) => [e.taskId, e.dependsOn, e.state]);
    expect(await edges()).toEqual([
      [b.id, a.id, "succeeded"],
      [c.id, a.id, "succeeded"],
      [c.id, b.id, "succeeded"],
    ]);
    await prune({ dataSource: ds, olderThan: new Date(Date.now() + 60_000) });
    // a and b are gone with b's edge; c (pending) keeps its record of how they ended.
    expect(await edges()).toEqual([
      [c.id, a.id, "succeeded"],
      [c.id, b.id, "succeeded"],
    ]);
    // A task deleted otherwise leaves its edges: the next prune removes them.
    await ds.getRepository(BaseTaskEntity).delete({ id: c.id });
    await prune({ dataSource: ds, olderThan: new Date(Date.now() + 60_000) });
    expect(await edges()).toEqual([]);
  });

  it("cancelling a waiting task, or a dependency, settles what waits on it", async () => {
    const root = await node("root").save();
    const mid = await node("mid", [root]).save();
    const leaf = await node("leaf", [mid]).save();
    const result = await mid.cancel();
    expect(result.outcome).toBe("cancelled");
    expect(await Promise.all([root, mid, leaf].map(statusOf))).toEqual(["pending", "cancelled", "failed"]);
  });

  it("refuses a dependency that does not exist, one not saved, and a cycle, and nothing of the transaction commits", async () => {
    await expect(node("orphan", ["987654321"]).save()).rejects.toThrow(DependencyError);
    await expect(node("orphan", ["987654321"]).save()).rejects.toThrow("dependsOn: task 987654321 does not exist");
    await expect(node("unsaved", [node("never saved")]).save()).rejects.toThrow("is not saved");
    await expect(node("bad", ["x1" as string]).save()).rejects.toThrow("dependsOn[0] must be a positive 64-bit integer");
    const a = node("a");
    const b = node("b", [a]);
    a.dependsOn = [b];
    await expect(ds.getRepository(Node).save([a, b])).rejects.toThrow(/dependsOn makes a cycle: task \d+ → task \d+ → task \d+/);
    const self = node("self");
    self.dependsOn = [self];
    await expect(self.save()).rejects.toThrow("cycle");
    expect(await ds.getRepository(BaseTaskEntity).count()).toBe(0);
    expect(await ds.query("SELECT COUNT(*) AS n FROM ormq_task_dependencies")).toEqual([{ n: expect.anything() }]);
    expect(Number((await ds.query("SELECT COUNT(*) AS n FROM ormq_task_dependencies"))[0].n)).toBe(0);
  });

  it("the sweep settles what a crash left open between an outcome and its release", async () => {
    const a = await node("a").save();
    const b = await node("b", [a]).save();
    // As a crash after a's outcome and before its dependents were settled leaves it.
    await ds.query(`UPDATE ormq_tasks SET status = 'succeeded' WHERE id = ${a.id}`);
    expect(await statusOf(b)).toBe("waiting");
    expect(await sweepDependencies(ormqFor(ds))).toBe(1);
    expect(await statusOf(b)).toBe("pending");
    expect(await sweepDependencies(ormqFor(ds))).toBe(0);
  });

  it("the sweep settles a waiting task a crash left with nothing open: released, or settled by a dependency's failure", async () => {
    const a = await node("a").save();
    const b = await node("b", [a]).save();
    const bad = await node("bad").save();
    const failing = await node("failing", [bad]).save();
    const anyway = await RunAnywayNode.create({ name: "anyway", dependsOn: [bad] }).save();
    const below = await node("below", [failing]).save();
    // As a crash after the edges were marked, and before the release or the failure's settle, leaves them.
    await ds.query(`UPDATE ormq_tasks SET status = 'succeeded' WHERE id = ${a.id}`);
    await ds.query(`UPDATE ormq_tasks SET status = 'failed' WHERE id = ${bad.id}`);
    await ds.query(`UPDATE ormq_task_dependencies SET state = 'succeeded' WHERE depends_on = ${a.id}`);
    await ds.query(`UPDATE ormq_task_dependencies SET state = 'failed' WHERE depends_on = ${bad.id}`);
    expect(await Promise.all([b, failing, anyway, below].map(statusOf))).toEqual(["waiting", "waiting", "waiting", "waiting"]);
    expect(await sweepDependencies(ormqFor(ds))).toBe(3);
    expect(await Promise.all([b, failing, anyway, below].map(statusOf))).toEqual(["pending", "failed", "pending", "failed"]);
    expect((await ds.getRepository(Node).findOneByOrFail({ id: failing.id })).lastError).toBe(`DependencyFailedError: task ${bad.id} it depends on failed`);
    expect(await sweepDependencies(ormqFor(ds))).toBe(0);
  });

  it("a fan-in: many dependencies finishing at once on two workers release the dependent once, after the last", async () => {
    const deps = Array.from({ length: 120 }, (_, i) => node(`d${i}`));
    await enqueueMany(deps, { dataSource: ds });
    const last = await node("last", deps).save();
    const [one, two] = await Promise.all([processN(Node, 200, { ...quiet(), concurrency: 10 }), processN(Node, 200, { ...quiet(), concurrency: 10 })]);
    expect(one.succeeded + two.succeeded).toBe(121);
    expect(await statusOf(last)).toBe("succeeded");
    expect(started.at(-1)).toEqual({ name: "last", dependenciesDone: true });
  });

  it("a batch's callback runs once, after every task of the batch finished, whatever their outcome, with the counts", async () => {
    BatchDone.runs = 0;
    const tasks = [node("b1"), node("b2"), node("b3", [], "fail"), node("b4"), node("b5")];
    const batch = await enqueueBatch(tasks, { dataSource: ds, onComplete: BatchDone.create({}) });
    expect(batch.ids).toEqual(tasks.map((t) => t.id));
    expect(await statusOf({ id: batch.onCompleteId! })).toBe("waiting");
    expect((await cancelTask(tasks[4].id, { dataSource: ds })).outcome).toBe("cancelled");
    await processN(Node, 10, quiet());
    expect(await statusOf({ id: batch.onCompleteId! })).toBe("pending");
    await processN(BatchDone, 10, quiet());
    expect(BatchDone.runs).toBe(1);
    const done = await ds.getRepository(BatchDone).findOneByOrFail({ id: batch.onCompleteId! });
    expect(done.result).toEqual({ open: 0, succeeded: 3, failed: 1, cancelled: 1, deleted: 0 });
  });
});
