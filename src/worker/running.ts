import { WorkerShutdownError } from "../errors";
import type { Logger } from "../logger";
import type { AttemptAbort } from "./abort";
import type { Completer } from "./completer";
import { attemptCommitOf, type TaskContext } from "./context";
import { handedBack, type Attempt } from "./outcome";

/** After the grace period and the abort, how long run() has to settle before it is abandoned. */
const ABANDON_AFTER_ABORT_MS = 2_000;

/** A task a worker holds and has started: running, or run() over and its outcome being written. */
export interface RunningTask {
  /** What its outcome is built from (see outcome.ts). */
  attempt: Attempt;
  abort: AttemptAbort;
  done: Promise<void>;
  /** run() has returned and the outcome is being written: never hand this one back. */
  finished: boolean;
  /** run() is over (its hooks may still run): the attempt happened, never refund it. */
  runOver: boolean;
  /** Handed back at shutdown while run() was still going: its late outcome is ignored. */
  abandoned: boolean;
  /** The slot this task took is free again (run() returned, or the task ended otherwise). */
  slotFreed: boolean;
  /** The attempt's context: ctx.transaction may have committed its outcome before run() returned. */
  ctx?: TaskContext;
}

/** Its outcome is being written or written: by ctx.transaction, or by the completer (run() is over). */
export function outcomeWritten(entry: RunningTask): boolean {
  return entry.finished || (entry.ctx !== undefined && attemptCommitOf(entry.ctx)?.writingOrCommitted === true);
}

/**
 * A worker's last phase: waits for its running tasks. When stopping, they get the grace period;
 * then their signal aborts with a WorkerShutdownError; a run() that ignores it is abandoned and
 * its task handed back.
 */
export async function finishRunning(
  running: ReadonlySet<RunningTask>,
  completer: Completer,
  logger: Logger,
  shutdown: {
    gracePeriodMs: number;
    stopRequested: () => boolean;
    /** Resolves when a stop is asked for. */
    stopped: Promise<void>;
    /** Resolves when the grace period is cut short (a second signal). */
    graceEnded: Promise<void>;
  },
): Promise<void> {
  // Abandoned runs may never settle: never wait for them.
  const allDone = () => Promise.allSettled([...running.values()].filter((r) => !r.abandoned).map((r) => r.done));
  if (!shutdown.stopRequested()) await Promise.race([allDone(), shutdown.stopped]);
  if (running.size === 0) return;
  const { gracePeriodMs } = shutdown;
  logger.info({ running: running.size, gracePeriodMs }, "stopping: waiting for running tasks");
  if (await settlesWithin(allDone(), gracePeriodMs, shutdown.graceEnded)) return;
  const reason = new WorkerShutdownError();
  logger.warn({ running: running.size }, "grace period over: aborting running tasks");
  for (const r of running.values()) r.abort.abort(reason);
  if (await settlesWithin(allDone(), ABANDON_AFTER_ABORT_MS)) return;
  completer.giveUpAfter(gracePeriodMs + ABANDON_AFTER_ABORT_MS);
  // A task whose run() is over but whose hooks still hang is not handed back (its attempt
  // happened): it is abandoned, and rescued when its lease expires.
  for (const r of running.values()) if (!r.finished && r.runOver) r.abandoned = true;
  const stuck = [...running.values()].filter((r) => !r.finished && !r.runOver);
  const handBacks = stuck.map((r) => {
    r.abandoned = true;
    logger.warn({ taskId: r.attempt.id }, "run() ignored its abort signal; the task is handed back while its promise still runs");
    return completer.submit(handedBack(r.attempt));
  });
  await Promise.all(handBacks);
  // Outcomes already being written (their run() returned) finish on their own.
  await allDone();
}

/** True if `promise` settles within `ms` (and before `cutShort` resolves, when given). */
async function settlesWithin(promise: Promise<unknown>, ms: number, cutShort?: Promise<void>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const racers: Promise<boolean>[] = [promise.then(() => true), timeout];
  if (cutShort) racers.push(cutShort.then(() => false));
  try {
    return await Promise.race(racers);
  } finally {
    clearTimeout(timer);
  }
}
