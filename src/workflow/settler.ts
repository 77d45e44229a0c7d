import type { OrmqClient } from "../client/client";
import type { Logger } from "../logger";
import { settleDependents, type Finished } from "./dependencies";

/** Finished tasks settled per transaction. */
const BATCH = 1_000;

/**
 * A worker's settling of finished tasks' dependents (see dependencies.ts): outcomes that arrive
 * while a settle is in flight are taken together by the next, as the completer groups outcomes.
 * A settle that fails is logged and left to the maintenance sweep, which finds the open edges of
 * finished tasks; it never stops the worker.
 */
export class DependencySettler {
  private queue = new Map<string, Finished>();
  private draining: Promise<void> | undefined;

  constructor(
    private readonly client: OrmqClient,
    private readonly logger: Logger,
  ) {}

  /** A task ended with `status` (its outcome is written). */
  finished(id: string, status: Finished): void {
    this.queue.set(id, status);
    this.draining ??= this.drain();
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
