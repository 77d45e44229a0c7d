/**
 * A running attempt's progress (`ctx.progress(0.4, "4 of 10 files")`): checked when reported,
 * written to the task's row at most once per THROTTLE_MS (a loop that reports every item writes
 * once a second, not once an item), and the last value always written before the attempt's
 * outcome. A write that fails is logged, not thrown into the task: progress is advisory.
 */
import { InvalidOptionError } from "../errors";

/** At most one progress write per task per this. */
export const THROTTLE_MS = 1_000;

/** A progress message's cap (the column's). */
export const MAX_PROGRESS_MESSAGE_CHARS = 200;

/** A checked progress report. */
export interface ProgressReport {
  fraction: number;
  message: string | null;
}

/** Checks a report: a fraction from 0 to 1, and an optional message of at most 200 characters. */
export function checkProgress(fraction: unknown, message: unknown): ProgressReport {
  if (typeof fraction !== "number" || !Number.isFinite(fraction) || fraction < 0 || fraction > 1) {
    throw new InvalidOptionError(`ctx.progress(fraction): expected a number from 0 to 1, got ${typeof fraction === "number" ? fraction : JSON.stringify(fraction) ?? String(fraction)}`);
  }
  if (message !== undefined && message !== null && typeof message !== "string") {
    throw new InvalidOptionError(`ctx.progress(fraction, message): the message must be a string, got ${typeof message}`);
  }
  if (typeof message === "string" && message.length > MAX_PROGRESS_MESSAGE_CHARS) {
    throw new InvalidOptionError(`ctx.progress(fraction, message): the message is ${message.length} characters; at most ${MAX_PROGRESS_MESSAGE_CHARS}`);
  }
  // NUL cannot be stored in PostgreSQL text; other characters are kept.
  return { fraction, message: typeof message === "string" ? message.replaceAll("\u0000", "\uFFFD") : null };
}

/** One attempt's progress: the throttle, and the final write. */
export class AttemptProgress {
  private latest: ProgressReport | null = null;
  private written: string | undefined;
  private lastWriteAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    /** Writes a report to the task's row (guarded by the attempt). */
    private readonly write: (report: ProgressReport) => Promise<unknown>,
    private readonly onWriteError: (err: unknown) => void,
  ) {}

  /** Records a report: written now, or at the end of the throttle's second. */
  report(fraction: unknown, message?: unknown): Promise<void> {
    this.latest = checkProgress(fraction, message);
    const wait = THROTTLE_MS - (Date.now() - this.lastWriteAt);
    if (wait <= 0) return this.writeLatest();
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.writeLatest();
      }, wait);
      this.timer.unref();
    }
    return Promise.resolve();
  }

  /** Writes the last report if it is not written yet. Called when the attempt ends. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.writeLatest();
  }

  /** One write at a time, of the latest report. */
  private writeLatest(): Promise<void> {
    this.writing = this.writing.then(async () => {
      const report = this.latest;
      const key = report && `${report.fraction}|${report.message}`;
      if (!report || key === this.written) return;
      this.lastWriteAt = Date.now();
      try {
        await this.write(report);
        this.written = key!;
      } catch (err) {
        this.onWriteError(err);
      }
    });
    return this.writing;
  }
}
