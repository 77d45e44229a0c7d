/**
 * How many tasks a worker claims ahead of its free slots: a fixed number (`prefetch: 50`), or,
 * by default (`prefetch: "auto"`), a buffer sized from what the worker observes.
 *
 * Why claim ahead at all: without a buffer, a slot that frees waits a claim's round trip for its
 * next task, and with short tasks the worker spends most of its time waiting on claims (10 slots
 * of no-op tasks on PostgreSQL: a third of what a 490-task buffer drains). Why not always a big
 * one: a task held in one worker's buffer is a task another, idle, worker cannot run; with tasks
 * of half a second, two workers sharing 20 would not share them fairly.
 *
 * The automatic size is the number of whole tasks the worker's slots get through during two claim
 * round trips (the buffer is refilled once it is half empty, so half of it must outlast one claim):
 *
 *     buffer = floor(concurrency / (mean run time) * (mean claim time) * 2)
 *
 * at most `AUTO_MAX_HELD - concurrency`. Tasks far longer than a claim get no buffer; no-op tasks
 * get the largest. Until a run has finished and a claim after the first has come back, nothing is
 * claimed ahead: a worker never hoards tasks of unknown length.
 *
 * The first claim is left out of the mean: a new worker's first claim pays for its connection and
 * statements, and waits behind the other workers starting with it (134 ms against 1–8 ms for the
 * rest, on a loaded machine). A mean seeded by it gave tasks of half a second a buffer of one, and
 * one of two workers held a task the other could have run. Rounding down, for the same reason: a
 * task is held ahead only when the slots are expected to finish a whole one while claims run.
 */

/** With `prefetch: "auto"`, slots and buffer together hold at most this many tasks. */
export const AUTO_MAX_HELD = 500;

/** Weight of the newest observation in the running means: about the last 20 runs count. */
const RUN_WEIGHT = 0.05;
/** Claims are fewer; about the last 5 count. */
const CLAIM_WEIGHT = 0.2;

export class PrefetchGauge {
  private runMs: number | undefined;
  private claimMs: number | undefined;
  private claims = 0;

  constructor(
    /** A number fixes the buffer; "auto" sizes it from observations. */
    private readonly prefetch: number | "auto",
    private readonly concurrency: number,
  ) {}

  /** A run (one attempt, in its slot) took this long. */
  ranFor(ms: number): void {
    if (this.prefetch !== "auto") return;
    this.runMs = this.runMs === undefined ? ms : this.runMs + RUN_WEIGHT * (ms - this.runMs);
  }

  /** A claim's round trip took this long. */
  claimedIn(ms: number): void {
    if (this.prefetch !== "auto") return;
    if (++this.claims === 1) return; // the first is cold (see above)
    this.claimMs = this.claimMs === undefined ? ms : this.claimMs + CLAIM_WEIGHT * (ms - this.claimMs);
  }

  /** Tasks to hold beyond the slots, now. */
  buffer(): number {
    if (this.prefetch !== "auto") return this.prefetch;
    const max = Math.max(0, AUTO_MAX_HELD - this.concurrency);
    if (this.runMs === undefined || this.claimMs === undefined) return 0;
    // A run reported as 0 ms (a no-op, timer resolution) would divide by zero: a microsecond.
    const perMs = this.concurrency / Math.max(this.runMs, 0.001);
    const wanted = Math.floor(perMs * this.claimMs * 2);
    return Math.min(max, wanted);
  }
}
