import type { OrmqClient } from "../client/client";
import type { Logger } from "../logger";
import { anyDependencies } from "../dialect/dependencyStatements";
import { settleDependents, type Finished } from "./dependencies";

/** Finished tasks settled per transaction. */
const BATCH = 1_000;
/**
 * At most one look for dependents per this many ms: under load the outcomes of several completer
 * batches go together. Each look is a read on the database, and a look per completer batch (ten
 * tasks at the defaults) cost a PostgreSQL drain about 8% of its rate, measured. An idle worker's
 * first outcome is looked at once; a dependent waits at most this much longer.
 */
const MIN_INTERVAL_MS = 10;
/**
 * While the database holds no dependency at all, outcomes are not looked at; whether it does is
 * read again at most this often. A workflow enqueued in this process turns the looks on at once;
 * one enqueued elsewhere, within this long, and the sweep settles what came before.
 */
const RECHECK_MS = 1_000;

/**
 * A worker's settling of finished tasks' dependents (see dependencies.ts): outcomes that arrive
 * while a settle is in flight are taken together by the next, as the completer groups outcomes.
 * A settle that fails is logged and left to the maintenance sweep, which finds the open edges of
 * finished tasks; it never stops the worker.
 */
export class DependencySettler {
  private queue = new Map<string, Finished>();
  private draining: Promise<void> | undefined;
  private lastLookAt = -Infinity;
  /** Whether the database was last seen holding dependencies (see RECHECK_MS). */
  private inUse = false;
  private checkedAt = -Infinity;

  constructor(
    private readonly client: OrmqClient,
    private readonly logger: Logger,
  ) {}

  /** A task ended with `status` (its outcome is written). */
  finished(id: string, status: Finished): void {
    if (!this.inUse && !this.client.dependenciesSeen) {
      // Nothing depends on anything: no look, unless the last check is old.
      if (performance.now() - this.checkedAt < RECHECK_MS) return;
      this.checkedAt = performance.now();
      this.queue.set(id, status);
      this.draining ??= this.check().then(() => this.drain());
      return;
    }
    this.queue.set(id, status);
    this.draining ??= this.drain();
  }

  /** Reads whether the database holds any dependency. */
  private async check(): Promise<void> {
    try {
      this.inUse = await anyDependencies(this.client.dataSource);
    } catch (err) {
      this.inUse = true; // look, rather than miss: the looks log their own failures
      this.logger.debug({ err }, "could not read whether any task has dependencies");
    }
    if (!this.inUse && !this.client.dependenciesSeen) this.queue.clear();
  }

  /** Whether dependents are being settled now (a task may be about to become ready). */
  get busy(): boolean {
    return this.draining !== undefined;
  }

  /** Resolves once everything given so far is settled (a stopping worker waits for it). */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drain(): Promise<void> {
    try {
      // A turn first, so that the outcomes of one completer batch settle together.
      await new Promise<void>((resolve) => setImmediate(resolve));
      while (this.queue.size > 0) {
        const wait = this.lastLookAt + MIN_INTERVAL_MS - performance.now();
        if (wait > 0) await new Promise<void>((resolve) => setTimeout(resolve, wait));
        this.lastLookAt = performance.now();
        const batch = new Map<string, Finished>();
        for (const [id, status] of this.queue) {
          if (batch.size >= BATCH) break;
          batch.set(id, status);
        }
        for (const id of batch.keys()) this.queue.delete(id);
        try {
          await settleDependents(this.client, batch);
        } catch (err) {
          this.logger.warn({ err, taskIds: [...batch.keys()].slice(0, 20) }, "could not settle these tasks' dependents; the maintenance sweep will");
        }
      }
    } finally {
      this.draining = undefined;
    }
  }
}
