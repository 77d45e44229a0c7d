import type { ClientEvents } from "../client/events";
import type { Dialect, RescuedTask } from "../dialect";
import type { Logger } from "../logger";
import { Periodic } from "./periodic";

const BATCH = 100;

/**
 * Returns to the queue the running tasks whose lease expired: their worker died or stopped
 * heartbeating. Every live worker runs one, and the one holding the rescue's lease (`mine`, see
 * Maintainer) does the work; the rescue's own UPDATE re-checks status and lease anyway, so two
 * rescuers, or a rescuer and a late completion, cannot both win. No hooks run: the rescuing
 * worker may not even have the task's class.
 */
export function startRescuer(
  dialect: Dialect,
  intervalMs: number,
  logger: Logger,
  events?: ClientEvents,
  mine: () => Promise<boolean> = async () => true,
  /** After each round, with what it rescued (the worker settles dependents, and sweeps). */
  afterRound?: (rescued: readonly RescuedTask[]) => Promise<void>,
): Periodic {
  return new Periodic(
    intervalMs,
    async () => {
      try {
        if (!(await mine())) return; // another worker rescues (see Maintainer)
        const all: RescuedTask[] = [];
        for (;;) {
          const rescued = await dialect.rescueExpired(BATCH);
          all.push(...rescued);
          for (const task of rescued) {
            logger.warn({ taskId: task.id, status: task.status }, "rescued a task whose worker was lost");
            events?.emit("task:rescued", { taskId: task.id, status: task.status, rescuedBy: dialect.workerId });
          }
          if (rescued.length < BATCH) break;
        }
        await afterRound?.(all);
      } catch (err) {
        logger.warn({ err }, "rescue failed; retrying at the next round");
      }
    },
    0.2,
  ).start();
}
