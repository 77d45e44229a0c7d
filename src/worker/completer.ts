import { setTimeout as sleep } from "node:timers/promises";
import type { Completion, Dialect, FinalStatus } from "../dialect";
import { writeFailureOf } from "../dialect";
import type { Logger } from "../logger";
import { fallbackOf } from "./outcome";

/** What to do with a completion the database refused for its content, written alone. */
type Refused = (w: Waiting, err: unknown, statement: string | undefined) => Promise<void>;

/**
 * A completion waiting to be written, and what to tell when it is: its status, or null when it
 * was not written. `resolve` is called once, as a method (a started attempt is its own entry).
 */
export interface Waiting {
  readonly completion: Completion;
  resolve(status: FinalStatus | null): void;
}

/** Completions waiting while a write is in flight before a second writer starts (see submit). */
const SECOND_WRITER_AT = 100;
/**
 * A write that fails for a reason that is neither transient nor the row's content (a statement
 * the server cannot run, say) is tried this many times, then given up: the task is let go and its
 * lease expires, so the rescue returns it to the queue. It never loops.
 */
const MAX_OTHER_FAILURES = 4;

/**
 * Writes finished attempts. Completions that arrive while a write is in flight are coalesced into
 * the next one (one UPDATE for many tasks); each submitter waits until its completion is on disk
 * and learns whether the guard let it through. A failed write is handled by what failed it:
 *
 * - transient (connection, resources, concurrency, a busy SQLite): retried with backoff until it
 *   goes through, or until shutdown gives up;
 * - the content of a row (SQLSTATE classes 22 and 23, SQLite constraints): the batch is split
 *   until the refused completions stand alone, and each of those is written as a minimal fallback
 *   that keeps its decision (`fallbackOf`). A refused outcome is never retried as it is;
 * - anything else: retried a few times, then logged with the statement and the task ids, and given up.
 *
 * A completion given up resolves with null: the worker lets the task go (no more heartbeats), so
 * it never stays `running` for good.
 */
export class Completer {
  private queue: Waiting[] = [];
  /** Writers running (flush loops), at most the dialect's `completionWriters`. */
  private writers = 0;
  /** Tasks whose completion a writer has in flight: another writer leaves their others alone. */
  private readonly inFlight = new Set<string>();
  private giveUpAt = Infinity;

  constructor(
    private readonly dialect: Dialect,
    private readonly logger: Logger,
    private readonly maxBatch = 500,
  ) {}

  /**
   * Resolves with the task's status once written, or null when it was not: the guard refused it
   * (the worker no longer held the task) or it could not be written (see the class comment).
   */
  submit(completion: Completion): Promise<FinalStatus | null> {
    return new Promise((resolve) => this.enqueue({ completion, resolve }));
  }

  /** As submit, telling `entry.resolve` instead of a promise (every attempt's path: no promise for it). */
  enqueue(entry: Waiting): void {
    this.queue.push(entry);
    // A second writer joins when a batch's worth waits while the first is busy: PostgreSQL then
    // works on two completion statements at once, on two connections (drain with history +5% to
    // +18% in three alternating pairs on 2 cores).
    if (this.writers === 0 || (this.writers < this.dialect.completionWriters && this.queue.length >= SECOND_WRITER_AT)) {
      this.writers++;
      void this.flush();
    }
  }

  /**
   * Stop retrying failed writes after `ms` (at shutdown). A task whose outcome could not be
   * written stays `running` until its lease expires and a rescue returns it to the queue.
   */
  giveUpAfter(ms: number): void {
    this.giveUpAt = Date.now() + ms;
  }

  /** One writer: writes batches until nothing is left that another writer is not writing. */
  private async flush(): Promise<void> {
    try {
      await this.writeBatches();
    } finally {
      // In the same synchronous run as the loop's last look at the queue: a completion submitted
      // from here on starts a writer of its own.
      this.writers--;
    }
  }

  private async writeBatches(): Promise<void> {
    // Let completions that finish in the same turn of the event loop join this batch, and the
    // next ones: without a turn between batches, a write that resolves within microtasks (SQLite
    // writes synchronously) is followed at once by one of the one or two completions that came
    // meanwhile, a transaction each (a SQLite drain at concurrency 1 fell from 22k to 8.5k
    // tasks/s, 14,157 writes for 20,000 tasks instead of 55).
    const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
    await nextTurn();
    for (let first = true; this.queue.length > 0; first = false) {
      if (!first && this.queue.length < this.maxBatch) await nextTurn();
      const batch = this.takeBatch(this.maxBatch);
      // All that waits belongs to tasks another writer has in flight: it takes them next.
      if (batch.length === 0) return;
      for (const w of batch) this.inFlight.add(w.completion.id);
      try {
        await this.write(batch);
      } catch (err) {
        // write() handles every failure of the database; this is a bug in it. Let the tasks go
        // rather than leave their submitters waiting for ever.
        this.logger.error({ err, taskIds: batch.map((w) => w.completion.id) }, "internal error while recording task outcomes; the tasks are let go");
        for (const w of batch) w.resolve(null);
      } finally {
        for (const w of batch) this.inFlight.delete(w.completion.id);
      }
    }
  }

  /**
   * Writes `batch` (or what is left of it) until every completion in it is resolved. A completion
   * the database refuses for its content, alone, goes to `refusedAlone`.
   */
  private async write(batch: Waiting[], refusedAlone: Refused = (w, err, statement) => this.writeFallback(w, err, statement)): Promise<void> {
    let todo = batch;
    for (let failures = 1; ; failures++) {
      let err: unknown;
      try {
        const applied = await this.dialect.complete(todo.map((w) => w.completion));
        for (const w of todo) w.resolve(applied.get(w.completion.id) ?? null);
        return;
      } catch (thrown) {
        err = thrown;
      }
      const failure = writeFailureOf(err);
      // Part of the batch may be on disk already (PostgreSQL writes a batch's kinds one after
      // another): those are done, and the rest is what failed.
      if (failure.applied) {
        const applied = failure.applied;
        for (const w of todo) if (applied.has(w.completion.id)) w.resolve(applied.get(w.completion.id)!);
        todo = todo.filter((w) => !applied.has(w.completion.id));
        if (todo.length === 0) return;
      }
      const ids = todo.map((w) => w.completion.id);
      if (failure.kind === "content") {
        if (todo.length > 1) {
          // The batch fails as a whole: halve it until the refused rows stand alone.
          const half = Math.ceil(todo.length / 2);
          await this.write(todo.slice(0, half), refusedAlone);
          await this.write(todo.slice(half), refusedAlone);
          return;
        }
        await refusedAlone(todo[0], err, failure.statement);
        return;
      }
      if (Date.now() >= this.giveUpAt) {
        this.logger.error({ err, statement: failure.statement, taskIds: ids }, "could not record task outcomes before shutdown; the tasks stay running until their lease expires");
        for (const w of todo) w.resolve(null);
        return;
      }
      if (failure.kind === "other" && failures >= MAX_OTHER_FAILURES) {
        this.logger.error(
          { err, statement: failure.statement, taskIds: ids },
          "the database keeps failing to record these task outcomes; giving them up (their leases expire and the rescue requeues them)",
        );
        for (const w of todo) w.resolve(null);
        return;
      }
      const delay = Math.min(5_000, 50 * 2 ** Math.min(failures, 7));
      this.logger.warn({ err, statement: failure.statement, pending: this.queue.length + todo.length, retryInMs: delay }, "could not record task outcomes; retrying");
      await sleep(delay);
    }
  }

  /**
   * A completion the database refused for its content, alone: written as a fallback that keeps
   * its decision, then as a minimal one; if even that is refused, the task is let go.
   */
  private async writeFallback(w: Waiting, refused: unknown, statement: string | undefined): Promise<void> {
    const { completion } = w;
    this.logger.error(
      { err: refused, statement, taskId: completion.id, event: completion.event },
      "the database refused this task's outcome for its content; writing a fallback outcome that keeps its decision",
    );
    for (const minimal of [false, true]) {
      const written = await this.writeOne(fallbackOf(completion, refused, minimal));
      if (written !== "refused") {
        w.resolve(written);
        return;
      }
    }
    this.logger.error({ statement, taskId: completion.id }, "the database refused even a minimal outcome for this task; it is let go");
    w.resolve(null);
  }

  /** Writes one completion as `write` does; "refused" when the database refuses it for its content. */
  private writeOne(completion: Completion): Promise<FinalStatus | null | "refused"> {
    return new Promise((resolve) => {
      this.write([{ completion, resolve }], async () => resolve("refused")).catch(() => resolve(null));
    });
  }

  /**
   * Up to `max` waiting completions, one per task (a task's first outcome wins), none of a task
   * whose completion another writer has in flight.
   */
  private takeBatch(max: number): Waiting[] {
    const batch: Waiting[] = [];
    const ids = new Set<string>();
    const rest: Waiting[] = [];
    for (const w of this.queue) {
      if (batch.length < max && !ids.has(w.completion.id) && !this.inFlight.has(w.completion.id)) {
        ids.add(w.completion.id);
        batch.push(w);
      } else rest.push(w);
    }
    this.queue = rest;
    return batch;
  }
}
