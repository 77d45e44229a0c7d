/**
 * Workflows, first part: a task's own writes and its children commit with its attempt's success
 * (ctx.transaction, ctx.enqueue), and the parent/children relation.
 */
import { ChildEntity, Column, Entity, PrimaryGeneratedColumn, type DataSource } from "typeorm";
import { AttemptLostError, BaseTaskEntity, processN, type TaskContext } from "../src";
import { rescueExpiredTasks, TaskEventEntity } from "../src/admin";
import { memoryLogger, useTestDatabase, WITH_MARIADB } from "./support/db";
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

const entities = [Ledger, Step, FanOut, Transfer, EphemeralTransfer, BadChildren];

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
