/**
 * Fairness between tenants (issue 29): tenant A's `big` tasks queued first, then `small` tasks for
 * each of tenants B to J; one worker at the defaults drains them all. Reported: tasks/s, and how
 * many tasks had started when the last of B-J's did (FIFO: after all of A's). The same tasks of a
 * class without fairness beside it, and a single tenant alone with and without it; alternating,
 * two rounds each, the better kept (the order's noise, not a tuning).
 */
import pino from "pino";
import { ChildEntity, Column, type DataSource } from "typeorm";
import { BaseTaskEntity, enqueueMany, processN } from "../../src";
import { cpuNow, cpuPerTask, Databases, open, rate, type DatabaseName, type Result } from "../common";

let started = 0;
let lastOther = 0;

@ChildEntity("bench_fair_tenant")
export class FairTenant extends BaseTaskEntity {
  static fairness = { by: "tenant" };
  @Column({ type: "varchar", length: 16, nullable: true })
  tenant!: string | null;
  async run() {
    started++;
    if (this.tenant !== "A") lastOther = started;
  }
}

@ChildEntity("bench_fifo_tenant")
export class FifoTenant extends BaseTaskEntity {
  @Column({ type: "varchar", length: 16, nullable: true })
  tenant!: string | null;
  async run() {
    started++;
    if (this.tenant !== "A") lastOther = started;
  }
}

const OTHERS = ["B", "C", "D", "E", "F", "G", "H", "I", "J"];

async function fillTenants(ds: DataSource, cls: typeof FairTenant | typeof FifoTenant, big: number, small: number): Promise<void> {
  for (let i = 0; i < big; i += 50_000) await enqueueMany(Array.from({ length: Math.min(50_000, big - i) }, () => cls.create({ tenant: "A" })), { dataSource: ds });
  if (small > 0) await enqueueMany(OTHERS.flatMap((tenant) => Array.from({ length: small }, () => cls.create({ tenant }))), { dataSource: ds });
}

async function drainTenants(databases: Databases, database: DatabaseName, cls: typeof FairTenant | typeof FifoTenant, big: number, small: number): Promise<Result> {
  const url = await databases.fresh(database);
  const ds = await open(url, { entities: [FairTenant, FifoTenant] });
  try {
    await fillTenants(ds, cls, big, small);
    const total = big + small * OTHERS.length;
    started = 0;
    lastOther = 0;
    const cpu0 = cpuNow();
    const t0 = performance.now();
    const summary = await processN(cls, total, { dataSource: ds, logger: pino({ level: "warn" }) });
    const ms = performance.now() - t0;
    if (summary.succeeded !== total) throw new Error(`fairness: ${summary.succeeded} of ${total} tasks succeeded`);
    const fair = cls === FairTenant ? "static fairness by tenant" : "no fairness (FIFO)";
    const mix = small > 0 ? `tenant A's ${big.toLocaleString("en-US")} queued first, then ${small} for each of B-J` : `one tenant's ${big.toLocaleString("en-US")}`;
    const order = small > 0 ? `; the last of B-J's started as task ${lastOther.toLocaleString("en-US")} of ${total.toLocaleString("en-US")}` : "";
    return { scenario: "fairness", database, variant: `${fair}, ${mix}, one worker at the defaults${order}`, tasks: total, tasksPerSecond: rate(total, ms), ...cpuPerTask(cpu0, cpuNow(), total, database) };
  } finally {
    await ds.destroy();
  }
}

export async function fairness(databases: Databases, database: DatabaseName, big: number, small: number): Promise<Result[]> {
  const sides: [string, () => Promise<Result>][] = [
    ["fair", () => drainTenants(databases, database, FairTenant, big, small)],
    ["fifo", () => drainTenants(databases, database, FifoTenant, big, small)],
    ["fair alone", () => drainTenants(databases, database, FairTenant, big, 0)],
    ["fifo alone", () => drainTenants(databases, database, FifoTenant, big, 0)],
  ];
  const best = new Map<string, Result>();
  for (let round = 0; round < 2; round++) {
    for (const [name, run] of round % 2 === 0 ? sides : [...sides].reverse()) {
      const r = await run();
      const before = best.get(name);
      if (!before || r.tasksPerSecond! > before.tasksPerSecond!) best.set(name, r);
    }
  }
  const ratio = (a: string, b: string) => (best.get(a)!.tasksPerSecond! / best.get(b)!.tasksPerSecond!).toFixed(2);
  return [
    { ...best.get("fair")!, variant: `${best.get("fair")!.variant}; ${ratio("fair", "fifo")}x the same drain without fairness` },
    best.get("fifo")!,
    { ...best.get("fair alone")!, variant: `${best.get("fair alone")!.variant}; ${ratio("fair alone", "fifo alone")}x without fairness` },
    best.get("fifo alone")!,
  ];
}
