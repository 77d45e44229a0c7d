import type { DataSource } from "typeorm";
import { BaseTaskEntity, type TaskStatus } from "../../entities/BaseTaskEntity";
import { TaskRegistry } from "../registry";
import { resolveDataSource } from "../worker/options";

/** How many tasks are in one queue, of one type, in one status. */
export interface TaskCount {
  queue: string;
  type: string;
  status: TaskStatus;
  count: number;
}

export interface QueueStats {
  counts: TaskCount[];
  /**
   * Tasks whose type has no runnable class in this DataSource. Workers leave them alone; they
   * wait here until a class for the type is deployed, or someone removes them.
   */
  unknownTypes: { type: string; count: number }[];
}

/** Counts tasks by queue, type and status, and those no worker here can run. */
export async function getStats(options: { dataSource?: DataSource } = {}): Promise<QueueStats> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  const registry = TaskRegistry.for(dataSource);
  const rows: { queue: string; type: string; status: TaskStatus; count: string | number }[] = await dataSource
    .createQueryBuilder()
    .select("t.queue", "queue")
    .addSelect("t.type", "type")
    .addSelect("t.status", "status")
    .addSelect("COUNT(*)", "count")
    .from(dataSource.getMetadata(BaseTaskEntity).tablePath, "t")
    .groupBy("t.queue")
    .addGroupBy("t.type")
    .addGroupBy("t.status")
    .orderBy("t.queue")
    .addOrderBy("t.type")
    .addOrderBy("t.status")
    .getRawMany();
  const counts = rows.map((r) => ({ ...r, count: Number(r.count) }));
  const unknown = new Map<string, number>();
  for (const c of counts) {
    if (!registry.byKey.has(c.type)) unknown.set(c.type, (unknown.get(c.type) ?? 0) + c.count);
  }
  return { counts, unknownTypes: [...unknown].map(([type, count]) => ({ type, count })) };
}
