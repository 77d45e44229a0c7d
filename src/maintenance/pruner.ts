import type { DataSource } from "typeorm";
import type { TaskStatus } from "../../entities/BaseTaskEntity";
import { prune } from "./prune";
import type { Logger } from "../logger";
import { Periodic } from "./periodic";

/** Runs `prune` from a worker every `intervalMs` (the worker's `prune` option), when it holds the prune's lease. */
export function startPruner(
  dataSource: DataSource,
  options: { olderThan: number; statuses?: TaskStatus[]; intervalMs: number },
  logger: Logger,
  mine: () => Promise<boolean> = async () => true,
): Periodic {
  return new Periodic(
    options.intervalMs,
    async () => {
      try {
        if (!(await mine())) return; // another worker prunes (see Maintainer)
        const result = await prune({ dataSource, olderThan: options.olderThan, statuses: options.statuses });
        if (result.deleted > 0 || result.blocked.length > 0) logger.info({ ...result, blocked: result.blocked.length }, "pruned finished tasks");
        if (result.blocked.length > 0) logger.warn({ blocked: result.blocked.slice(0, 20) }, "some finished tasks are still referenced and were kept");
      } catch (err) {
        logger.warn({ err }, "prune failed; trying again at the next interval");
      }
    },
    0.1,
  ).start();
}
