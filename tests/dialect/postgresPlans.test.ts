/**
 * PostgreSQL: how the planner reads ormq's claim, where the plan decides what a claim costs.
 *
 * A burst leaves the entries of its rows at the head of the partial pending index once they are
 * claimed and finished (dead until vacuum). An index scan marks each one dead the first time it
 * meets it, and later scans step over them; a bitmap scan never does, so with a bitmap plan every
 * idle claim re-read the whole burst until autovacuum came by (after a drain of 20,000: 1.6 ms a
 * claim instead of 0.3, on the latency from save() to run()). The planner picked the bitmap while
 * the table's statistics were older than the burst: for up to a minute after one (autovacuum).
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

  it("a claim from the head after a burst reads the claim index in order (an index scan, which marks the burst's dead entries once), not a bitmap scan", async () => {
    dialect = createDialect(ds, "plan-worker", memoryLogger().logger);
    // A burst, finished: 20,000 rows that left the pending index, their entries still in it.
    await enqueueMany(Array.from({ length: 20_000 }, () => PlanProbe.create({})), { dataSource: ds });
    await ds.query(`UPDATE ormq_tasks SET status = 'succeeded' WHERE type = 'plan_probe'`);
    // No ANALYZE: the statistics are from before the burst, as for up to a minute after one (autovacuum).
    await ds.getRepository(PlanProbe).save(PlanProbe.create({}));

    const claims: { text: string; values: unknown[] }[] = [];
    const query = Client.prototype.query as (...args: unknown[]) => unknown;
    jest.spyOn(Client.prototype, "query").mockImplementation(function (this: Client, ...args: unknown[]) {
      const config = args[0] as { name?: string; text?: string; values?: unknown[] };
      if (typeof config === "object" && config?.name?.startsWith("ormq_claim")) claims.push({ text: config.text!, values: config.values ?? [] });
      return query.apply(this, args);
    } as never);
    const rows = await dialect.claim({ types: ["plan_probe"], queues: null, limit: 142, leaseMs: 60_000 });
    expect(rows).toHaveLength(1);
    jest.restoreAllMocks();

    expect(claims).toHaveLength(1);
    const [{ "QUERY PLAN": [plan] }] = (await ds.query(`EXPLAIN (FORMAT JSON) ${claims[0].text}`, claims[0].values)) as { "QUERY PLAN": { Plan: PlanNode }[] }[];
    const scans = nodes(plan.Plan).filter((n) => /Scan/.test(n["Node Type"]) && n["Index Name"] === "ormq_tasks_claim");
    expect(scans.map((n) => n["Node Type"])).toEqual(["Index Scan"]);
  });
});
