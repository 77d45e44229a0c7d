/**
 * ormq's benchmark: `npm run bench` (all scenarios, both databases), or a part of it:
 *   npm run bench -- --only drain,latency --databases postgres
 * Scenarios: enqueue, drain, latency, backlog, scheduled, memory, ceiling, others (graphile-worker
 * and plainjob head to head with ormq, alternating runs, medians of three). Each result is printed as one JSON line as it comes; the run ends
 * with a table, and a full run (or ORMQ_BENCH_RESULTS=path) writes bench/RESULTS.md.
 * Environment: ORMQ_BENCH_TASKS (default 20000: drain size; the backlog scenario also runs ten
 * times that), ORMQ_BENCH_SAMPLES (latency and scheduled samples, default 500 / 200),
 * ORMQ_BENCH_HUGE=1 (backlog of 1,000,000 too), ORMQ_BENCH_PG_URL (a server to use instead of an
 * embedded one started here).
 */
import "reflect-metadata";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Databases, type DatabaseName, type Result } from "./common";
import { startBenchPostgres } from "./postgres";
import { writeResults } from "./results";
import { ceiling } from "./scenarios/ceiling";
import { drain, memory, RECOMMENDED } from "./scenarios/drain";
import { enqueue } from "./scenarios/enqueue";
import { latency } from "./scenarios/latency";
import { graphileWorker, plainjob } from "./scenarios/others";
import { scheduled } from "./scenarios/scheduled";

const SCENARIOS = ["enqueue", "drain", "latency", "backlog", "scheduled", "memory", "ceiling", "others"] as const;
type Scenario = (typeof SCENARIOS)[number];

function parseArgs(argv: string[]): { only: Set<Scenario>; databases: DatabaseName[]; full: boolean } {
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const only = value("--only")?.split(",") ?? [...SCENARIOS];
  for (const name of only) if (!SCENARIOS.includes(name as Scenario)) throw new Error(`unknown scenario ${name}; one of ${SCENARIOS.join(", ")}`);
  const databases = (value("--databases") ?? process.env.ORMQ_BENCH_DATABASES ?? "postgres,sqlite").split(",") as DatabaseName[];
  return { only: new Set(only as Scenario[]), databases, full: !value("--only") && !value("--databases") };
}

async function main() {
  const { only, databases, full } = parseArgs(process.argv.slice(2));
  const loadAtStart = loadavg()[0];
  const tasks = Number(process.env.ORMQ_BENCH_TASKS ?? 20_000);
  const samples = Number(process.env.ORMQ_BENCH_SAMPLES ?? 500);
  const backlogSizes = [tasks, tasks * 10, ...(process.env.ORMQ_BENCH_HUGE === "1" ? [1_000_000] : [])];
  const dir = mkdtempSync(join(tmpdir(), "ormq-bench-"));
  const pg = databases.includes("postgres") ? await startBenchPostgres() : undefined;
  const dbs = new Databases(dir, pg?.url ?? "");
  const results: Result[] = [];
  const ceilings = new Map<number, number>();
  const record = (result: Result) => {
    const base = ceilings.get(result.tasks);
    const drains = result.scenario === "drain" || result.scenario === "backlog" || result.scenario === "head-to-head";
    if (base && drains && result.database === "postgres" && result.tasksPerSecond !== undefined) {
      result.ofCeiling = Math.round((result.tasksPerSecond / base) * 100) / 100;
    }
    results.push(result);
    console.log(JSON.stringify({ benchmark: "ormq", ...result }));
  };
  const run = async (what: Scenario, database: DatabaseName | null, fn: () => Promise<void>) => {
    if (!only.has(what) || (database && !databases.includes(database))) return;
    await fn();
  };
  try {
    if (pg) {
      // First, so that each PostgreSQL drain can be reported as a fraction of it.
      const sizes = new Set([...(only.has("drain") || only.has("ceiling") ? [tasks] : []), ...(only.has("backlog") ? backlogSizes : [])]);
      for (const size of sizes) {
        await run("ceiling", "postgres", async () => {
          const r = await ceiling(dbs, size);
          ceilings.set(size, r.tasksPerSecond!);
          record(r);
        });
      }
    }
    for (const database of databases) {
      await run("enqueue", database, async () => (await enqueue(dbs, database, tasks)).forEach(record));
      await run("drain", database, async () => {
        for (const concurrency of [1, 10, 50]) record(await drain(dbs, database, tasks, { concurrency, history: true }));
        record(await drain(dbs, database, tasks, { concurrency: RECOMMENDED.concurrency, history: false }));
        record(await drain(dbs, database, tasks, { concurrency: RECOMMENDED.concurrency, history: false, keepSucceeded: false }));
        // What claiming ahead buys: the same without a buffer (batches of the free slots only).
        record(await drain(dbs, database, tasks, { concurrency: RECOMMENDED.concurrency, history: true, prefetch: 0 }));
      });
      await run("backlog", database, async () => {
        for (const size of backlogSizes) record(await drain(dbs, database, size, { concurrency: RECOMMENDED.concurrency, history: true }, "backlog"));
      });
      await run("latency", database, async () => {
        record(await latency(dbs, database, samples));
        if (database === "postgres") record(await latency(dbs, database, samples, "other"));
      });
      await run("scheduled", database, async () => record(await scheduled(dbs, database, Math.min(samples, 200))));
      await run("memory", database, async () => record(await memory(dbs, database, tasks)));
    }
    // Head to head: ormq at the recommended settings (with history; without, as the other queues
    // keep none; and deleting succeeded tasks too, as graphile-worker does) and the other queue,
    // alternating, three times each; the medians are compared, so a burst of load on a shared
    // machine hits all of them.
    const headToHead = async (database: DatabaseName, theirs: () => Promise<Result>) => {
      const sides = { history: [] as Result[], quiet: [] as Result[], lean: [] as Result[], theirs: [] as Result[] };
      const concurrency = RECOMMENDED.concurrency;
      for (let i = 0; i < 3; i++) {
        sides.history.push(await drain(dbs, database, tasks, { concurrency, history: true }, "head-to-head"));
        sides.quiet.push(await drain(dbs, database, tasks, { concurrency, history: false }, "head-to-head"));
        sides.lean.push(await drain(dbs, database, tasks, { concurrency, history: false, keepSucceeded: false }, "head-to-head"));
        sides.theirs.push(await theirs());
      }
      for (const runs of Object.values(sides)) {
        const sorted = [...runs].sort((a, b) => a.tasksPerSecond! - b.tasksPerSecond!);
        const median = sorted[1];
        record({ ...median, scenario: "head-to-head", variant: `${median.variant}; median of 3, alternating (${sorted.map((r) => r.tasksPerSecond).join(", ")})` });
      }
    };
    await run("others", "postgres", () => headToHead("postgres", () => graphileWorker(dbs, tasks, 10)));
    await run("others", "sqlite", () => headToHead("sqlite", () => plainjob(dbs, tasks)));

    console.log(`\normq benchmark, ${tasks} tasks per drain`);
    const blank = (v: unknown) => (v === undefined ? "" : v);
    console.table(
      results.map((r) => ({
        scenario: r.scenario,
        database: r.database,
        variant: r.variant,
        tasks: r.tasks,
        "tasks/s": blank(r.tasksPerSecond),
        "of ceiling": blank(r.ofCeiling),
        p50: blank(r.p50),
        p95: blank(r.p95),
        p99: blank(r.p99),
        "RSS MB": blank(r.rssMb),
        "worker µs/task": blank(r.workerCpuUs),
        "server µs/task": blank(r.serverCpuUs),
      })),
    );
    const target = process.env.ORMQ_BENCH_RESULTS ?? (full ? join(__dirname, "..", "..", "bench", "RESULTS.md") : undefined);
    if (target) {
      await writeResults(target, results, { tasks, pgUrl: pg?.url, loadAtStart });
      console.log(`results written to ${target}`);
    }
  } finally {
    if (pg) await dbs.dropAll().catch(() => {});
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
