import { setTimeout as sleep } from "node:timers/promises";
import type { Completion, Dialect } from "../dialect";
import type { Logger } from "../logger";

interface Waiting {
  completion: Completion;
  resolve: (applied: boolean) => void;
}

/**
 * Writes finished attempts. Completions that arrive while a write is in flight are coalesced into
 * the next one (one UPDATE for many tasks). A write that fails (connection lost, database busy) is
 * retried with backoff, not forgotten: each submitter waits until its completion is on disk and
 * learns whether the guard let it through.
 */
export class Completer {
  private queue: Waiting[] = [];
  private flushing: Promise<void> | undefined;
  private giveUpAt = Infinity;

  constructor(
    private readonly dialect: Dialect,
    private readonly logger: Logger,
    private readonly maxBatch = 500,
  ) {}

  /** Resolves true when written, false when the guard refused it (the lease was lost). */
  submit(completion: Completion): Promise<boolean> {
    return new Promise((resolve) => {
      this.queue.push({ completion, resolve });
      this.flushing ??= this.flush().finally(() => (this.flushing = undefined));
    });
  }

  /**
   * Stop retrying failed writes after `ms` (at shutdown). Tasks whose completion could not be
   * written stay `running` with an expiring lease, and are run again after it expires.
   */
  giveUpAfter(ms: number): void {
    this.giveUpAt = Date.now() + ms;
  }

  private async flush(): Promise<void> {
    // Let completions that finish in the same tick join this batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    let failures = 0;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      try {
        const applied = await this.dialect.complete(batch.map((w) => w.completion));
        failures = 0;
        for (const w of batch) w.resolve(applied.has(w.completion.id));
      } catch (err) {
        failures++;
        if (Date.now() >= this.giveUpAt) {
          this.logger.error({ err, taskIds: batch.map((w) => w.completion.id) }, "could not record task outcomes; their leases will expire and they will run again");
          for (const w of batch) w.resolve(false);
          continue;
        }
        this.queue.unshift(...batch);
        const delay = Math.min(5_000, 50 * 2 ** Math.min(failures, 7));
        this.logger.warn({ err, pending: this.queue.length, retryInMs: delay }, "could not record task outcomes; retrying");
        await sleep(delay);
      }
    }
  }
}
