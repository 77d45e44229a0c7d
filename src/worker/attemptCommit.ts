/**
 * An attempt's own writes committed with its success: `ctx.transaction(fn)` and the children given
 * to `ctx.enqueue`. One database transaction holds the task's writes, its children and the guarded
 * write of its success (River's JobCompleteTx, DBOS's transactional steps), so either all of them
 * commit or none does:
 * - run() fails, times out or is cancelled before the commit: nothing of it exists, and the next
 *   attempt starts from scratch (children included);
 * - the process dies before the commit: the same, and the rescue runs the task again;
 * - the attempt lost its task meanwhile (lease expired and rescued, cancelled): the guarded write
 *   refuses, the transaction rolls back with AttemptLostError, and nothing is written twice.
 * After the commit the attempt has succeeded, whatever run() does next: the worker writes no other
 * outcome for it (see HeldTasks.start).
 */
import { QueryRunnerAlreadyReleasedError, type DataSource, type EntityManager } from "typeorm";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { ormqFor } from "../client/client";
import { limitIdleTransaction, succeedInTransaction } from "../dialect/taskWrites";
import { enqueueMany } from "../enqueue/enqueueMany";
import { AttemptCommitError, AttemptLostError } from "../errors";
import type { AttemptWrites, TaskInstance } from "./context";
import { attemptOf, succeeded } from "./outcome";

/**
 * Whether a transaction failed because its connection went: PostgreSQL ended it (25P03, the idle
 * limit; 57P01 and 08xxx, the connection), or TypeORM had already released its runner after the
 * connection's error (what the next statement then meets).
 */
function connectionLost(err: unknown): boolean {
  if (err instanceof QueryRunnerAlreadyReleasedError) return true;
  const code = (err as { code?: unknown; driverError?: { code?: unknown } }).driverError?.code ?? (err as { code?: unknown }).code;
  return typeof code === "string" && (code === "25P03" || code === "57P01" || code.startsWith("08"));
}

export class AttemptCommit implements AttemptWrites {
  private readonly pending: BaseTaskEntity[] = [];
  /** open → inside (fn runs: children may still be given) → writing → committed; back to open on a rollback. */
  private state: "open" | "inside" | "writing" | "committed" = "open";
  private inFlight: Promise<unknown> | undefined;
  /** The value the committed transaction recorded as the result. */
  private committedValue: unknown;

  constructor(
    private readonly dataSource: DataSource,
    private readonly task: BaseTaskEntity,
    private readonly workerId: string,
    /** The worker's lease: how long the transaction may sit idle before the server ends it. */
    private readonly leaseMs: number,
  ) {}

  /** Whether the attempt's success is committed. */
  get committed(): boolean {
    return this.state === "committed";
  }

  /** Whether the success is being written (its transaction's last statements, or its commit) or is committed. */
  get writingOrCommitted(): boolean {
    return this.state === "writing" || this.state === "committed";
  }

  /** Whether run() gave children that a success must commit. */
  get hasChildren(): boolean {
    return this.pending.length > 0;
  }

  /** The result the committed success recorded. */
  get result(): unknown {
    return this.committedValue;
  }

  /** Settles when a commit in flight has (nothing to await when none is). */
  settled(): Promise<unknown> | undefined {
    return this.inFlight?.catch(() => undefined);
  }

  /** Holds children until the attempt's success commits. Checked now: a bad one throws in run(). */
  enqueue(tasks: TaskInstance | readonly TaskInstance[]): void {
    if (this.state !== "open" && this.state !== "inside") {
      throw new AttemptCommitError(`ctx.enqueue: task ${this.task.id}'s success is already committed; give children before ctx.transaction commits`);
    }
    const list: readonly unknown[] = Array.isArray(tasks) ? tasks : [tasks];
    const checked = list.map((child, i) => {
      if (!(child instanceof BaseTaskEntity)) throw new AttemptCommitError(`ctx.enqueue: item ${i} is not an instance of a task class (use SomeTask.create({...}))`);
      if (child.id !== undefined && child.id !== null) throw new AttemptCommitError(`ctx.enqueue: item ${i} (${child.constructor.name}) was already saved (id ${child.id})`);
      return child;
    });
    this.pending.push(...checked);
  }

  /**
   * Runs `fn` in a transaction that also writes the children given so far and the attempt's
   * success, with `fn`'s value as the task's result. Once per attempt; a transaction that fails
   * (fn throws, the guard refuses) leaves the attempt open, and throws in run() as usual.
   */
  async transaction<T>(fn: (manager: EntityManager) => Promise<T>): Promise<T> {
    if (this.state === "committed") throw new AttemptCommitError(`ctx.transaction: task ${this.task.id}'s success is already committed; call ctx.transaction once, last in run()`);
    if (this.state !== "open") throw new AttemptCommitError(`ctx.transaction: task ${this.task.id} has a transaction committing already; await it`);
    this.state = "inside";
    const committing = this.dataSource.transaction((m) => this.write(m, fn));
    this.inFlight = committing;
    try {
      const value = await committing;
      this.committedValue = value;
      this.state = "committed";
      return value;
    } catch (err) {
      // Rolled back: the children were not written after all (enqueueMany gave them ids).
      for (const child of this.pending) (child as { id?: string }).id = undefined;
      this.state = "open";
      throw connectionLost(err) ? new AttemptCommitError(`ctx.transaction: the database ended task ${this.task.id}'s transaction, so nothing of it committed: it sat idle between two statements for the worker's lease (${this.leaseMs} ms), or its connection was cut; do slow work (an API call, a file) before ctx.transaction`, { cause: err }) : err;
    }
  }

  private async write<T>(m: EntityManager, fn: (manager: EntityManager) => Promise<T>): Promise<T> {
    // A worker cut off from the database mid-transaction would otherwise hold the task's row
    // (locked by the guarded write below) until the server noticed the connection was gone, which
    // can take hours, and no other worker could rescue the task: the server ends a transaction
    // left idle for a whole lease (the task's lease has run out by then anyway).
    await limitIdleTransaction(m, this.leaseMs);
    const value = await fn(m);
    this.state = "writing";
    // Checked before anything of ormq's is written: a result that cannot be stored (a cycle, too
    // large) throws here and rolls back the task's writes with it.
    const completion = succeeded(attemptOf(this.task), value);
    if (this.pending.length > 0) {
      for (const child of this.pending) child.parentId = this.task.id;
      await enqueueMany(this.pending, { manager: m });
    }
    const now = new Date(await ormqFor(this.dataSource).clock.now(m.queryRunner));
    const ok = await succeedInTransaction(
      m,
      { id: this.task.id, attempt: completion.attempt, workerId: this.workerId, result: completion.result, history: completion.history, remove: completion.remove, startedAt: this.task.startedAt ?? null },
      now,
    );
    if (!ok) throw new AttemptLostError(this.task.id);
    return value;
  }
}
