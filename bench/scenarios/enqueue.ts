/**
 * Enqueue: one save() per transaction; many at once with save([...], { chunk }); enqueueMany; and
 * an enqueue inside an application transaction that also writes a row of its own.
 */
import { enqueueMany } from "../../src";
import { Databases, Noop, open, Order, QuietNoop, rate, type DatabaseName, type Result } from "../common";

export async function enqueue(databases: Databases, database: DatabaseName, tasks: number): Promise<Result[]> {
  const ds = await open(await databases.fresh(database));
  const results: Result[] = [];
  const record = (variant: string, count: number, ms: number) => results.push({ scenario: "enqueue", database, variant, tasks: count, tasksPerSecond: rate(count, ms) });
  try {
    const repo = ds.getRepository(Noop);
    const one = Math.min(tasks, 2_000);
    let t0 = performance.now();
    for (let i = 0; i < one; i++) await repo.save(Noop.create({}));
    record("save() one at a time (one transaction each)", one, performance.now() - t0);

    const bulk = Math.min(tasks, 10_000);
    t0 = performance.now();
    await repo.save(Array.from({ length: bulk }, () => Noop.create({})), { chunk: 1_000 });
    record("save([...], { chunk: 1000 }), history on", bulk, performance.now() - t0);

    for (const cls of [Noop, QuietNoop]) {
      // A long-running application enqueues warm: one small call first (JIT, the column types
      // enqueueMany reads once per table), then the median of three calls of `bulk` tasks.
      await enqueueMany(Array.from({ length: 1_000 }, () => cls.create({})), { dataSource: ds });
      const times: number[] = [];
      for (let i = 0; i < 3; i++) {
        const batch = Array.from({ length: bulk }, () => cls.create({}));
        t0 = performance.now();
        await enqueueMany(batch, { dataSource: ds });
        times.push(performance.now() - t0);
      }
      const median = times.sort((a, b) => a - b)[1];
      record(`enqueueMany([...]), history ${cls === Noop ? "on" : "off"}; after a warm-up call, median of 3 calls`, bulk, median);
    }

    const inApp = Math.min(tasks, 1_000);
    t0 = performance.now();
    for (let i = 0; i < inApp; i++) {
      await ds.transaction(async (manager) => {
        await manager.insert(Order, { note: `order ${i}` });
        await manager.save(Noop.create({}));
      });
    }
    record("save() inside an application transaction that inserts its own row", inApp, performance.now() - t0);
    return results;
  } finally {
    await ds.destroy();
  }
}
