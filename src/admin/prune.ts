import type { DataSource } from "typeorm";
import { BaseTaskEntity, FINISHED_STATUSES, type TaskStatus } from "../../entities/BaseTaskEntity";
import { WorkerEntity } from "../../entities/WorkerEntity";
import { databaseNow } from "../clock";
import { InvalidOptionError, toError } from "../errors";
import { resolveDataSource } from "../worker/options";

export interface PruneOptions {
  dataSource?: DataSource;
  /** Remove tasks that finished more than this long ago (ms), or before this date. */
  olderThan: number | Date;
  /**
   * Which finished statuses to remove. Default `succeeded` and `cancelled`: failed tasks stay as a
   * dead-letter list until you include `failed` (or retry them).
   */
  statuses?: TaskStatus[];
}

export interface PruneResult {
  /** Tasks removed (their events went with them). */
  deleted: number;
  /** Tasks that could not be removed, with the reason: usually your own foreign key to them. */
  blocked: { id: string; error: string }[];
  /** Stopped or long-silent worker rows removed. */
  workersDeleted: number;
}

const BATCH = 500;

/**
 * Removes finished tasks and their history. A task your own rows still reference (a foreign key
 * without `onDelete: "CASCADE"` or `"SET NULL"`) is skipped and reported, not a reason to stop
 * half-way. Each batch is one DELETE guarded by status and finish time.
 */
export async function prune(options: PruneOptions): Promise<PruneResult> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  const statuses = options.statuses ?? ["succeeded", "cancelled"];
  for (const status of statuses) {
    if (!FINISHED_STATUSES.includes(status)) throw new InvalidOptionError(`prune: statuses may only name finished statuses, got ${JSON.stringify(status)}`);
  }
  const now = await databaseNow(dataSource);
  const cutoff = options.olderThan instanceof Date ? options.olderThan : new Date(now - checkAge(options.olderThan));
  const repo = dataSource.getRepository(BaseTaskEntity);
  const result: PruneResult = { deleted: 0, blocked: [], workersDeleted: 0 };
  const skip = new Set<string>();
  let after = "0";
  for (;;) {
    const ids = (
      await repo
        .createQueryBuilder("t")
        .select("t.id", "id")
        .where("t.status IN (:...statuses) AND t.finished_at < :cutoff AND t.id > :after", { statuses, cutoff: cutoff.getTime(), after })
        .orderBy("t.id")
        .limit(BATCH)
        .getRawMany<{ id: string | number }>()
    ).map((r) => String(r.id));
    if (ids.length === 0) break;
    after = ids[ids.length - 1];
    const guarded = (batch: string[]) =>
      repo
        .createQueryBuilder()
        .delete()
        .where("id IN (:...ids) AND status IN (:...statuses) AND finished_at < :cutoff", { ids: batch, statuses, cutoff: cutoff.getTime() })
        .execute();
    try {
      result.deleted += (await guarded(ids)).affected ?? 0;
    } catch {
      // Something in the batch is held by a foreign key: find which, one by one.
      for (const id of ids) {
        if (skip.has(id)) continue;
        try {
          result.deleted += (await guarded([id])).affected ?? 0;
        } catch (err) {
          skip.add(id);
          result.blocked.push({ id, error: toError(err).message });
        }
      }
    }
  }
  const workers = await dataSource
    .getRepository(WorkerEntity)
    .createQueryBuilder()
    .delete()
    .where("last_heartbeat_at < :cutoff", { cutoff: cutoff.getTime() })
    .execute();
  result.workersDeleted = workers.affected ?? 0;
  return result;
}

function checkAge(ms: unknown): number {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
    throw new InvalidOptionError(`prune: olderThan must be a number of milliseconds or a Date, got ${JSON.stringify(ms)}`);
  }
  return ms;
}
