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
  /** The executor's one listener (timeouts and cancels end the attempt at once). */
  private listener: ((reason: unknown) => void) | undefined;

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
    this.listener?.(reason);
  }

  /** Calls `fn` on abort (at once if already aborted); the returned function removes it. */
  onAbort(fn: (reason: unknown) => void): () => void {
    this.listener = fn;
    if (this.abortedWith) fn(this.abortedWith.reason);
    return () => {
      if (this.listener === fn) this.listener = undefined;
    };
  }
}
