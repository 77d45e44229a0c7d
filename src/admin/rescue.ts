import { hostname } from "node:os";
import type { DataSource } from "typeorm";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { createDialect, type RescuedTask } from "../dialect";
import { getDefaultLogger, type Logger } from "../logger";
import { resolveDataSource } from "../dataSource";

/**
 * Rescues, now, every running task whose lease has expired (workers do this on their own every
 * few seconds; this is for scripts and operators). Returns what it rescued.
 */
export async function rescueExpiredTasks(options: { dataSource?: DataSource; logger?: Logger } = {}): Promise<RescuedTask[]> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  const dialect = createDialect(dataSource, `${hostname()}/${process.pid}/admin`, options.logger ?? getDefaultLogger());
  try {
    const all: RescuedTask[] = [];
    for (;;) {
      const batch = await dialect.rescueExpired(500);
      all.push(...batch);
      if (batch.length < 500) return all;
    }
  } finally {
    await dialect.close();
  }
}
