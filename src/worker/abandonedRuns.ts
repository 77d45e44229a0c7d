import { WorkerNeedsRestartError } from "../errors";
import type { Logger } from "../logger";

/**
 * Counts runs that a timeout or cancel abandoned while they still run, and hooks past their
 * `hookTimeoutMs` that still run (the executor reports both the same way). Such runs hold memory,
 * sockets, perhaps locks: at `max` of them the worker is told to stop claiming and ask to be
 * restarted (`onLimit`, once) rather than pile more up.
 */
export class AbandonedRuns {
  private count = 0;
  private limitReached = false;

  constructor(
    private readonly max: number,
    private readonly logger: Logger,
    private readonly onLimit: (err: WorkerNeedsRestartError) => void,
  ) {}

  /** A run (or hook) that still runs; `logger` is its task's. */
  track(run: Promise<unknown>, logger: Logger): void {
    this.count++;
    logger.warn({ abandonedRuns: this.count }, "run() ignored its abort signal, or a hook missed its deadline; it is still running");
    void run.finally(() => {
      this.count--;
      logger.info({ abandonedRuns: this.count }, "an abandoned run() or hook settled");
    });
    if (this.count >= this.max && !this.limitReached) {
      this.limitReached = true;
      const err = new WorkerNeedsRestartError(
        `${this.count} runs or hooks that ignored their abort signal or deadline are still running; ` +
          "the worker stopped claiming: restart it (and make those tasks and hooks honour ctx.signal)",
      );
      this.logger.error({ abandonedRuns: this.count }, err.message);
      this.onLimit(err);
    }
  }
}
