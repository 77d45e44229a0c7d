import type { ClaimRequest, Dialect, ClaimFilter, TaskRow } from "../dialect";
import type { Logger } from "../logger";
import { DatabaseBackoff } from "./backoff";
import type { Doze } from "./doze";
import type { HeldTasks } from "./heldTasks";
import type { ResolvedOptions } from "./options";
import type { PrefetchGauge } from "./prefetchGauge";

/**
 * Outcomes waiting to be written beyond this many stop further claims: slots free when run()
 * returns, so without a bound a slow database would let finished-but-unwritten tasks pile up.
 */
export const MAX_UNWRITTEN = 1_000;

/** How many more claims a limited run makes, at most, while ready tasks remain after an empty one. */
const LOOKS_AGAIN = 5;

export interface ClaimLoopDeps {
  dialect: Dialect;
  held: HeldTasks;
  options: Pick<ResolvedOptions, "concurrency" | "batchSize" | "pollIntervalMs">;
  /**
   * How many to claim ahead of free slots, now. (A claimed task counts as a running one for any
   * limit across workers, so the limited claim stays within limits however far ahead it claims;
   * a paused queue is not claimed, and its buffered tasks go back: see controlsWatch.ts.)
   */
  gauge: PrefetchGauge;
  /** What the worker claims from: types, queues, lease, history types (for the next due time). */
  request: Omit<ClaimRequest, "limit">;
  /**
   * Claims up to `want` ready tasks, within every limit (see FlowGate). Returns them in claim
   * order, and whether a claim came back full (more may be ready).
   */
  claim: (want: number) => Promise<{ rows: TaskRow[]; full: boolean }>;
  /**
   * Whether tasks under a concurrency limit may be waiting for room: a slot freed here may be a
   * limit's place freed, so the loop looks again then rather than at the next poll.
   */
  limitsActive: () => boolean;
  /** Claim at most this many tasks in all, then finish (processN); Infinity runs until stopped. */
  limit: number;
  /**
   * Whether ready tasks of this worker's remain (only where a claim may pass them over: see
   * Dialect.claimMaySkipReady): a limited run looks again before it stops.
   */
  readyLeft?: () => Promise<boolean>;
  /**
   * The dependents of finished tasks being settled (workflows), or undefined when none are: a
   * limited run waits for it before it stops, since it may release tasks to the queue.
   */
  settling?: () => Promise<void> | undefined;
  logger: Logger;
  /** The loop sleeps on this; a wake-up cuts a sleep short (an enqueue, a slot freed, a stop). */
  doze: Doze;
  stopRequested: () => boolean;
}

/**
 * The claim loop: claims ready tasks while there are free slots (and, per the gauge, some more
 * into the buffer), and hands them to `held`, which starts them. It sleeps when nothing is ready,
 * until a wake-up or the poll interval, or until the next scheduled task is due. It returns when
 * stopped, or when a limited run (processN) has claimed its share and nothing more is ready;
 * tasks claimed but never started are then handed back, their attempt not counted.
 */
export async function runClaimLoop(deps: ClaimLoopDeps): Promise<void> {
  const { dialect, held, request, limit, logger, doze, gauge } = deps;
  const { concurrency, batchSize, pollIntervalMs } = deps.options;
  const sleep = (ms: number, wakeOnRoom = true) => {
    if (deps.stopRequested()) {
      doze.forget();
      return Promise.resolve();
    }
    return doze.sleep(ms, wakeOnRoom);
  };
  const backoff = new DatabaseBackoff(limit !== Infinity);
  /** Looks taken again, in a row, because ready tasks remained after an empty claim (readyLeft). */
  let lookedAgain = 0;
  try {
    while (!deps.stopRequested()) {
      held.fill();
      const remaining = limit - held.claimed;
      if (remaining <= 0 && held.buffered.size === 0) return;
      const want = claimSize({
        concurrency,
        prefetch: gauge.buffer(),
        batchSize,
        busy: held.busySlots,
        buffered: held.buffered.size,
        remaining,
        unwritten: held.unwritten,
      });
      if (want > 0) {
        doze.forget(); // a wake-up from here on means: look again
        let rows: TaskRow[];
        let full: boolean;
        const claimStarted = performance.now();
        try {
          ({ rows, full } = await deps.claim(want));
          gauge.claimedIn(performance.now() - claimStarted);
          backoff.succeeded();
        } catch (err) {
          const delay = backoff.failed(err);
          logger.warn({ err, retryInMs: delay }, "claim failed; retrying");
          await sleep(delay);
          continue;
        }
        held.add(rows, claimStarted);
        if (rows.length > 0) lookedAgain = 0;
        if (full) continue; // a full batch: more may be ready
        // Nothing more ready and nothing held that could enqueue more: processN is done. Unless
        // a wake-up came during the claim: a task whose outcome (a retry, say) was written
        // while the claim ran is ready, but the claim could not see it. Look again first.
        if (limit !== Infinity && held.running.size === 0 && held.buffered.size === 0 && !doze.pending) {
          // Where a claim may pass over ready tasks another claim held for a moment, a few more
          // looks while some remain, a little apart; then stop as before.
          const settling = deps.settling?.();
          if (settling) {
            await settling;
            continue;
          }
          if (deps.readyLeft && lookedAgain < LOOKS_AGAIN && (await deps.readyLeft())) {
            lookedAgain++;
            await sleep(5 * lookedAgain);
            continue;
          }
          return;
        }
        // Sleep until the next scheduled task is due, if that comes before the next poll; a
        // wake-up (an enqueue, here or announced) cuts the sleep short and looks again. A slot
        // freeing up does not: nothing was ready. (processN looks again when a task ends, to
        // return once the last one has.)
        await sleep(Math.min(pollIntervalMs, await nextDue(dialect, request, logger)), limit !== Infinity || deps.limitsActive());
        continue;
      }
      await sleep(pollIntervalMs);
    }
  } finally {
    // Tasks claimed but never started go back at once, their attempt not counted.
    await held.handBack();
  }
}

/** What the claim loop sees when it decides how many to claim (see claimSize). */
export interface ClaimRoom {
  concurrency: number;
  /** The buffer wanted now (the gauge's). */
  prefetch: number;
  batchSize: number;
  /** Slots running a task. */
  busy: number;
  /** Tasks claimed and not started yet (the buffer). */
  buffered: number;
  /** Tasks processN may still claim (Infinity for processForever). */
  remaining: number;
  /** Outcomes not yet written. */
  unwritten: number;
}

/**
 * How many tasks to claim now; 0 to wait. With a buffer, the loop claims once there is room for
 * half a batch, rather than a task at a time as slots free. That threshold is half the most one
 * claim may ever take (the batch size, and the bound on unwritten outcomes): a worker whose slots
 * and buffer came to more than 2,000 once waited for room for more than 1,000, which that bound
 * never gives, and never claimed at all.
 */
export function claimSize(room: ClaimRoom): number {
  const { concurrency, prefetch, batchSize, busy, buffered, remaining, unwritten } = room;
  const want = Math.min(concurrency + prefetch - busy - buffered, batchSize, remaining, MAX_UNWRITTEN - unwritten);
  if (want <= 0) return 0;
  // All that processN has left, when that is less.
  const least = prefetch > 0 ? Math.min(Math.ceil(Math.min(concurrency + prefetch, batchSize, MAX_UNWRITTEN) / 2), remaining) : 1;
  return want >= least ? want : 0;
}

/** Milliseconds until the next scheduled task this worker could claim; Infinity if none or unknown. */
async function nextDue(dialect: Dialect, filter: ClaimFilter, logger: Logger): Promise<number> {
  try {
    const due = await dialect.nextDueInMs(filter);
    return due === null ? Infinity : Math.max(0, due);
  } catch (err) {
    logger.debug({ err }, "could not read the next due time; polling");
    return Infinity;
  }
}
