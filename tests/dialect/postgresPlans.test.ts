/**
 * PostgreSQL: how the planner reads ormq's claims (plain, limited, fair), where the plan decides
 * what a claim costs.
 *
 * A burst leaves the entries of its rows at the head of the partial pending index once they are
 * claimed and finished (dead until vacuum). An index scan marks each one dead the first time it
 * meets it, and later scans step over them; a bitmap scan never does, so with a bitmap plan every
 * idle claim re-read the whole burst until autovacuum came by (after a drain of 20,000: 1.6 ms a
 * claim instead of 0.3, on the latency from save() to run()). The planner picked the bitmap on a
 * table never analyzed (a new table's first burst, until autovacuum's analyze): the test keeps
 * autovacuum off its table and checks that it was never analyzed, so that it keeps guarding. The
 * fair claim's reads lead with type and key and took an index scan without the change: its case
 * guards it. Each plan is read as a custom plan (the first executions) and as the generic plan a
 * prepared claim switches to.
 */
import { ChildEntity, type DataSource } from "typeorm";
import { Client } from "pg";
import { BaseTaskEntity, enqueueMany } from "../../src";
import { createDialect, type Dialect } from "../../src/dialect";
import { memoryLogger, useTestDatabase } from "../support/db";

@ChildEntity("plan_probe")
class PlanProbe extends BaseTaskEntity {
  run() {
    return null;
  }
}

type PlanNode = { "Node Type": string; "Index Name"?: string; Plans?: PlanNode[] };
const nodes = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(nodes)];

describe("PostgreSQL's claim plan", () => {
  let ds: DataSource;
  let dialect: Dialect;
  useTestDatabase("postgres", (opened) => ({ ds } = opened), [PlanProbe]);
  afterEach(async () => {
    await dialect?.close();
    jest.restoreAllMocks();
  });

  const noLimits = { types: [], queues: [], typeRates: [], queueRates: [] };
  const claims: [string, (d: Dialect) => Promise<unknown[]>][] = [
    ["a claim from the head", (d) => d.claim({ types: ["plan_probe"], queues: null, limit: 142, leaseMs: 60_000 })],
    ["a limited claim", (d) => d.claim({ types: ["plan_probe"], queues: null, limit: 142, leaseMs: 60_000, limits: { ...noLimits, types: [{ type: "plan_probe", column: null, max: 1_000 }] } })],
    ["a fair claim", (d) => d.claim({ types: ["plan_probe"], queues: null, limit: 142, leaseMs: 60_000, fair: { type: "plan_probe", weights: new Map() } })],
  ];

  it.each(claims)("%s after a burst reads ormq's index in order (an index scan, which marks the burst's dead entries once), never with a bitmap scan", async (_, claim) => {
    dialect = createDialect(ds, "plan-worker", memoryLogger().logger);
    await ds.query(`DELETE FROM ormq_tasks`);
    await ds.query(`ALTER TABLE ormq_tasks SET (autovacuum_enabled = off)`);
    // A burst, finished: 20,000 rows that left the pending index, their entries still in it.
    await enqueueMany(Array.from({ length: 20_000 }, () => PlanProbe.create({})), { dataSource: ds });
    await ds.query(`UPDATE ormq_tasks SET status = 'succeeded', fair_key = 'k' WHERE type = 'plan_probe'`);
    // Never analyzed, as a new table is until autovacuum's analyze comes by.
    expect(Number((await ds.query(`SELECT reltuples FROM pg_class WHERE relname = 'ormq_tasks'`))[0].reltuples)).toBe(-1);
    const task = await ds.getRepository(PlanProbe).save(PlanProbe.create({}));
    await ds.query(`UPDATE ormq_tasks SET fair_key = 'k' WHERE id = ${task.id}`);

    const statements: { text: string; values: unknown[] }[] = [];
    const query = Client.prototype.query as (...args: unknown[]) => unknown;
    jest.spyOn(Client.prototype, "query").mockImplementation(function (this: Client, ...args: unknown[]) {
      const config = typeof args[0] === "string" ? { text: args[0], values: args[1] } : (args[0] as { text?: string; values?: unknown[] });
      if (config?.text && /ormq_tasks\b/.test(config.text) && !/^\s*(BEGIN|COMMIT|ROLLBACK)/.test(config.text)) statements.push({ text: config.text, values: (config.values as unknown[]) ?? [] });
      return query.apply(this, args);
    } as never);
    const rows = await claim(dialect);
    jest.restoreAllMocks();
    expect(rows).toHaveLength(1);

    expect(statements.length).toBeGreaterThan(0);
    const scans: string[] = [];
    for (const { text, values } of statements) {
      for (const [explain, params] of [["EXPLAIN (FORMAT JSON)", values], ["EXPLAIN (FORMAT JSON, GENERIC_PLAN)", []]] as const) {
        const [{ "QUERY PLAN": [plan] }] = (await ds.query(`${explain} ${text}`, [...params])) as { "QUERY PLAN": { Plan: PlanNode }[] }[];
        for (const node of nodes(plan.Plan)) if (/^ormq_tasks_(claim|fair)$/.test(node["Index Name"] ?? "")) scans.push(node["Node Type"]);
      }
    }
    expect(scans.length).toBeGreaterThan(0);
    expect(scans.filter((type) => type !== "Index Scan" && type !== "Index Only Scan")).toEqual([]);
  });
});
