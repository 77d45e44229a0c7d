import { setTimeout as sleep } from "node:timers/promises";
import type { Completion, Dialect, FinalStatus } from "../dialect";
import type { Logger } from "../logger";

interface Waiting {
  completion: Completion;
  resolve: (status: FinalStatus | null) => void;
  /** Failed writes of this completion while written alone. */
  soloFailures: number;
}

/** A completion that fails this often on its own, while others are written, is given up. */
const MAX_SOLO_FAILURES = 5;
/** Completions waiting while a write is in flight before a second writer starts (see submit). */
const SECOND_WRITER_AT = 100;

/**
 * Writes finished attempts. Completions that arrive while a write is in flight are coalesced into
 * the next one (one UPDATE for many tasks). A write that fails (connection lost, database busy) is
 * retried with backoff, not forgotten: each submitter waits until its completion is on disk and
 * learns whether the guard let it through.
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
   * (the worker no longer held the task) or it could not be written before shutdown.
   */
  submit(completion: Completion): Promise<FinalStatus | null> {
    return new Promise((resolve) => {
      this.queue.push({ completion, resolve, soloFailures: 0 });
      // A second writer joins when a batch's worth waits while the first is busy: PostgreSQL then
      // works on two completion statements at once, on two connections (drain with history +5% to
      // +18% in three alternating pairs on 2 cores).
      if (this.writers === 0 || (this.writers < this.dialect.completionWriters && this.queue.length >= SECOND_WRITER_AT)) {
        this.writers++;
        void this.flush();
      }
    });
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
    // Let completions that finish in the same tick join this batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    let failures = 0;
    // After a failed batch, rows are written one by one until one succeeds, so that a single
    // completion the database rejects (bad data, say) cannot block every other one.
    let solo = false;
    while (this.queue.length > 0) {
      const batch = this.takeBatch(solo ? 1 : this.maxBatch);
      // All that waits belongs to tasks another writer has in flight: it takes them next.
      if (batch.length === 0) return;
      for (const w of batch) this.inFlight.add(w.completion.id);
      try {
        const applied = await this.dialect.complete(batch.map((w) => w.completion));
        failures = 0;
        solo = false;
        for (const w of batch) w.resolve(applied.get(w.completion.id) ?? null);
      } catch (err) {
        failures++;
        const ids = batch.map((w) => w.completion.id);
        if (Date.now() >= this.giveUpAt) {
          this.logger.error({ err, taskIds: ids }, "could not record task outcomes before shutdown; the tasks stay running until their lease expires");
          for (const w of batch) w.resolve(null);
          continue;
        }
        if (solo && ++batch[0].soloFailures >= MAX_SOLO_FAILURES && this.queue.length > 0) {
          // Others are waiting; this one keeps failing alone: give it up rather than block them.
          this.logger.error({ err, taskId: ids[0] }, "the database keeps rejecting this task's outcome; giving it up");
          batch[0].resolve(null);
          continue;
        }
        this.queue.unshift(...batch);
        solo = true;
        const delay = Math.min(5_000, 50 * 2 ** Math.min(failures, 7));
        this.logger.warn({ err, pending: this.queue.length, retryInMs: delay }, "could not record task outcomes; retrying");
        await sleep(delay);
      } finally {
        for (const w of batch) this.inFlight.delete(w.completion.id);
      }
    }
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
