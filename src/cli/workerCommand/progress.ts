import { SingleBar } from "cli-progress";
import type { AttemptFinished } from "../../worker/attemptFinished";

/** How often the progress bar recounts the tasks left. */
const REFRESH_TOTAL_MS = 2_000;

/** The terminal progress bar of `--until-empty`: done / total, rate, failures. */
export class Progress {
  private readonly bar = new SingleBar({
    format: "{bar} {value}/{total} tasks | {rate}/s | {failed} failed | {retried} retried | ETA {eta_formatted}",
    hideCursor: true,
    clearOnComplete: false,
    barsize: 30,
  });
  private done = 0;
  private failed = 0;
  private retried = 0;
  private readonly startedAt = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private refreshing = false;

  constructor(private readonly remaining: () => Promise<number>) {}

  async start(): Promise<void> {
    this.bar.start(await this.remaining(), 0, this.payload());
    // The count scans every unfinished task: often enough for a total that grows, rarely enough
    // not to compete with the drain it reports on. The bar itself moves with each finished attempt.
    this.timer = setInterval(() => void this.refresh(), REFRESH_TOTAL_MS);
  }

  finished(event: AttemptFinished): void {
    if (event.outcome === "failed") this.failed++;
    if (event.outcome === "retried" || event.outcome === "snoozed") this.retried++;
    else this.done++;
    this.bar.update(this.done, this.payload());
  }

  stop(): void {
    clearInterval(this.timer);
    this.bar.update(this.done, this.payload());
    this.bar.stop();
  }

  private async refresh(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    // New tasks (enqueued meanwhile, or by tasks) grow the total.
    const remaining = await this.remaining().catch(() => null);
    this.refreshing = false;
    if (remaining !== null) this.bar.setTotal(this.done + remaining);
    this.bar.update(this.done, this.payload());
  }

  private payload() {
    const seconds = (performance.now() - this.startedAt) / 1000;
    return { rate: seconds > 0 ? Math.round(this.done / seconds) : 0, failed: this.failed, retried: this.retried };
  }
}
