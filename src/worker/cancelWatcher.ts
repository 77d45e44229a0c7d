import type { Dialect } from "../dialect";
import type { Logger } from "../logger";
import { Periodic } from "../maintenance/periodic";

/** How often a worker with tasks in hand checks whether someone asked to cancel one of them. */
const CANCEL_CHECK_MS = 500;

/**
 * Notices cancel requests made from any process (cancelTask sets `cancel_requested_at`) for the
 * tasks a worker holds, and hands their ids to the worker, which aborts a running task's signal
 * or hands a buffered one back. One check at a time; a failed check waits for the next.
 */
export function startCancelWatcher(
  dialect: Dialect,
  logger: Logger,
  /** The ids worth asking about: running (not yet aborted) and buffered tasks. */
  candidates: () => string[],
  onRequested: (ids: string[]) => Promise<void>,
): Periodic {
  return new Periodic(CANCEL_CHECK_MS, async () => {
    const ids = candidates();
    if (ids.length === 0) return;
    try {
      const requested = await dialect.cancelRequested(ids);
      if (requested.length > 0) await onRequested(requested);
    } catch (err) {
      logger.debug({ err }, "could not check for cancel requests");
    }
  }).start();
}
