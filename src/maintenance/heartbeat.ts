import type { Dialect, Renewal } from "../dialect";
import type { Logger } from "../logger";
import { Periodic } from "./periodic";

/**
 * Tells the database this worker is alive, and extends the lease of every task it is running, so
 * a long task that is alive is never rescued from under it. It runs on the event loop: code that
 * blocks the loop for longer than the lease minus one interval (CPU-bound work, a long synchronous
 * SQLite busy wait) would let leases expire.
 */
export function startHeartbeat(
  dialect: Dialect,
  intervalMs: number,
  leaseMs: number,
  runningIds: () => string[],
  /** Whether a task is still running here (not finished meanwhile). */
  stillRunning: (id: string) => boolean,
  logger: Logger,
  /** Told what a heartbeat sent at `at` (performance.now()) did to the ids it asked about. */
  onRenewed: (renewal: Renewal, asked: readonly string[], at: number) => void,
): Periodic {
  // When each id first came back busy, in a row; warned once past half a lease (its lease runs
  // out meanwhile, and the task may be rescued once the lock goes).
  const busySince = new Map<string, { at: number; warned: boolean }>();
  return new Periodic(intervalMs, async () => {
    const ids = runningIds();
    const at = performance.now();
    try {
      const renewal = await dialect.heartbeat(ids, leaseMs);
      onRenewed(renewal, ids, at);
      for (const id of busySince.keys()) if (!renewal.busy.has(id)) busySince.delete(id);
      for (const id of renewal.busy) {
        const since = busySince.get(id) ?? { at, warned: false };
        busySince.set(id, since);
        if (!since.warned && at - since.at >= leaseMs / 2) {
          since.warned = true;
          logger.warn({ taskId: id, busyMs: Math.round(at - since.at) }, "heartbeat: another transaction has held this task's row for half a lease; its lease is not being renewed");
        }
      }
      // A task whose outcome was written while the heartbeat ran is not lost, just done; a busy
      // row is judged at the next beat.
      const lost = ids.filter((id) => !renewal.renewed.has(id) && !renewal.busy.has(id) && stillRunning(id));
      // Lost: rescued after the lease expired (the loop was blocked, the database unreachable),
      // or finished a moment ago. Its outcome will be refused; it may be running elsewhere.
      if (lost.length > 0) logger.warn({ taskIds: lost }, "heartbeat: no longer holding these tasks");
    } catch (err) {
      logger.warn({ err }, "heartbeat failed; retrying at the next beat");
    }
  }).start();
}
