/**
 * Prune under load: a million finished tasks are pruned while a worker drains 20,000 others; the
 * drain's rate is compared with the same drain alone, and every statement of the prune that took
 * over a second is counted (TypeORM's slow-query log on the prune's own DataSource).
 */
import pino from "pino";
import type { Logger as TypeOrmLogger } from "typeorm";
import { processN } from "../../src";
import { prune } from "../../src/admin";
import { Databases, fill, Noop, open, rate, type Result } from "../common";

export async function pruneDuringDrain(databases: Databases, finished: number, drained: number): Promise<Result[]> {
  const url = await databases.fresh("postgres");
  const ds = await open(url);
  let slow = 0;
  let longestMs = 0;
  const slowLog: TypeOrmLogger = {
    logQuery: () => {},
    logQueryError: () => {},
    logQuerySlow: (time) => {
      slow++;
      longestMs = Math.max(longestMs, time);
    },
    logSchemaBuild: () => {},
    logMigration: () => {},
    log: () => {},
  };
  const pruner = await open(url, { migrationsRun: false, logger: slowLog, maxQueryExecutionTime: 1_000 });
  try {
    await fill(ds, Noop, finished);
    await ds.query(`UPDATE ormq_tasks SET status = 'succeeded', finished_at = 1000`);
    await ds.query(`VACUUM ANALYZE ormq_tasks`);
    const drain = async () => {
      await fill(ds, Noop, drained);
      const t0 = performance.now();
      const summary = await processN(Noop, drained, { dataSource: ds, logger: pino({ level: "warn" }) });
      if (summary.succeeded !== drained) throw new Error(`prune-during-drain: ${summary.succeeded} of ${drained} succeeded`);
      return rate(drained, performance.now() - t0);
    };
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const alone = median([await drain(), await drain(), await drain()]);
    const t0 = performance.now();
    // Only the old million: the drains' own successes are recent. Drains follow one another for
    // as long as the prune runs.
    let pruned = false;
    const pruning = prune({ dataSource: pruner, olderThan: 3_600_000, statuses: ["succeeded"] }).finally(() => (pruned = true));
    const rates: number[] = [];
    while (!pruned) rates.push(await drain());
    const result = await pruning;
    const pruneMs = performance.now() - t0;
    const during = median(rates);
    if (result.deleted !== finished) throw new Error(`prune-during-drain: pruned ${result.deleted} of ${finished}`);
    return [
      { scenario: "prune", database: "postgres", variant: `drains of ${drained} alone, ${finished} finished tasks in the table; median of 3`, tasks: drained, tasksPerSecond: alone },
      {
        scenario: "prune",
        database: "postgres",
        variant: `the same drains while prune deletes the ${finished}; median of ${rates.length} (prune took ${Math.round(pruneMs / 1000)} s; its statements over 1 s: ${slow}${slow ? `, longest ${longestMs} ms` : ""})`,
        tasks: drained,
        tasksPerSecond: during,
      },
    ];
  } finally {
    await pruner.destroy();
    await ds.destroy();
  }
}
