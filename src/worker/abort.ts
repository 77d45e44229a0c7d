/**
 * An attempt's abort, with its AbortSignal made only when something asks for it.
 *
 * Most tasks never read `ctx.signal`. An AbortController and its signal, plus the listener the
 * executor would add and remove, were the largest single cost of a no-op attempt in the worker's
 * CPU profile (about 10%, with the garbage they leave). So the worker aborts this handle; a task
 * that reads `ctx.signal` gets a real signal, created already aborted when the abort came first.
 */
export class AttemptAbort {
  private controller: AbortController | undefined;
  private abortedWith: { reason: unknown } | undefined;
  /** The attempt's one listener (timeouts and cancels end the attempt at once). */
  private listener: AbortListener | undefined;

  get aborted(): boolean {
    return this.abortedWith !== undefined;
  }

  get reason(): unknown {
    return this.abortedWith?.reason;
  }

  /** The signal handed to run(): created on first use. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abortedWith) this.controller.abort(this.abortedWith.reason);
    }
    return this.controller.signal;
  }

  abort(reason: unknown): void {
    if (this.abortedWith) return;
    this.abortedWith = { reason };
    this.controller?.abort(reason);
    this.listener?.aborted(reason);
  }

  /**
   * Tells `listener` of the abort (at once if aborted already); undefined removes it. An object
   * with a method rather than a function: the attempt listens itself, with no closure per attempt.
   */
  listen(listener: AbortListener | undefined): void {
    this.listener = listener;
    if (listener && this.abortedWith) listener.aborted(this.abortedWith.reason);
  }
}

/** What AttemptAbort.listen tells. */
export interface AbortListener {
  aborted(reason: unknown): void;
}
