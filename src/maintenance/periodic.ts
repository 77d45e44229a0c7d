/**
 * Runs an async job every `intervalMs` (± `jitter` of it, so workers started together spread
 * out), never two at once. `stop()` cancels the next run and waits for one in progress.
 */
export class Periodic {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly intervalMs: number,
    private readonly job: () => Promise<void>,
    private readonly jitter = 0,
  ) {}

  start(): this {
    this.schedule();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    const spread = this.intervalMs * this.jitter * (Math.random() * 2 - 1);
    this.timer = setTimeout(() => {
      this.running = this.job().finally(() => {
        this.running = undefined;
        this.schedule();
      });
    }, Math.max(0, this.intervalMs + spread));
    this.timer.unref();
  }
}
