/**
 * ormq's benchmark: `npm run bench` (all scenarios, both databases), or a part of it:
 *   npm run bench -- --only drain,latency --databases postgres
 * Scenarios: enqueue, drain, latency, backlog, scheduled, memory, ceiling, scaling (1, 2, 4 and 8
 * worker processes on one PostgreSQL), flow (limited, rate-limited and unique beside plain), executors (run() on the
 * event loop, in a thread, in a process: start-up and per task), others (graphile-worker
 * and plainjob head to head with ormq, alternating runs, medians of three). Each result is printed as one JSON line as it comes; the run ends
 * with a table, and a full run (or ORMQ_BENCH_RESULTS=path) writes bench/RESULTS.md.
 * Environment: ORMQ_BENCH_TASKS (default 20000: drain size; the backlog scenario also runs ten
 * times that), ORMQ_BENCH_SAMPLES (latency and scheduled samples, default 500 / 200),
 * ORMQ_BENCH_ROUNDS (alternating rounds of the head-to-head, default 3), ORMQ_BENCH_QUIET_MS (how
 * long each head-to-head drain may wait for a quiet machine, default 30,000; 0: no wait),
 * ORMQ_BENCH_HUGE=1 (backlog of 1,000,000 too), ORMQ_BENCH_PG_URL (a server to use instead of an
 * embedded one started here), ORMQ_BENCH_MARIADB_URL (the same for MariaDB; else one is started
 * here when mariadb-server is installed, and MariaDB is left out when it is not).
 * On MariaDB: enqueue, drain, latency and flow, and the alternating drains beside PostgreSQL.
 */
import "reflect-metadata";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Databases, type DatabaseName, type Result } from "./common";
import { startBenchMariaDb } from "./mariadb";
import { startBenchPostgres } from "./postgres";
import { writeResults } from "./results";
import { ceiling } from "./scenarios/ceiling";
import { drain, memory, TUNED, type DrainSettings } from "./scenarios/drain";
import { inOwnProcess } from "./ownProcess";
import { enqueue } from "./scenarios/enqueue";
import { graphileLatency, latency, plainjobLatency } from "./scenarios/latency";
import { graphileEnqueue, plainjobEnqueue } from "./scenarios/others";
import { churn } from "./scenarios/churn";
import { pgbouncerAvailable, poolerLatency } from "./scenarios/pooler";
import { pruneDuringDrain } from "./scenarios/pruneDuringDrain";
import { scaling } from "./scenarios/scaling";
import { scheduled } from "./scenarios/scheduled";
import { keyedWorkers, limitedDrains, uniqueEnqueue } from "./scenarios/flowControl";
import { dashboardPages } from "./scenarios/dashboardPages";
import { executors } from "./scenarios/executors";
import { workflows } from "./scenarios/workflows";
import { otelCost } from "./scenarios/integrations";
import { fairness } from "./scenarios/fairness";

const SCENARIOS = ["enqueue", "drain", "latency", "backlog", "scheduled", "memory", "ceiling", "others", "scaling", "pooler", "prune", "churn", "flow", "dashboard", "executors", "workflows", "integrations"] as const;
type Scenario = (typeof SCENARIOS)[number];

function parseArgs(argv: string[]): { only: Set<Scenario>; databases: DatabaseName[]; full: boolean } {
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const only = value("--only")?.split(",") ?? [...SCENARIOS];
  for (const name of only) if (!SCENARIOS.includes(name as Scenario)) throw new Error(`unknown scenario ${name}; one of ${SCENARIOS.join(", ")}`);
  const databases = (value("--databases") ?? process.env.ORMQ_BENCH_DATABASES ?? "postgres,sqlite,mariadb").split(",") as DatabaseName[];
  return { only: new Set(only as Scenario[]), databases, full: !value("--only") && !value("--databases") };
}

async function main() {
  const { only, databases, full } = parseArgs(process.argv.slice(2));
  const loadAtStart = loadavg()[0];
  const tasks = Number(process.env.ORMQ_BENCH_TASKS ?? 20_000);
  const samples = Number(process.env.ORMQ_BENCH_SAMPLES ?? 500);
  // Alternating rounds of the head-to-head (its medians); the smoke test runs one.
  const rounds = Number(process.env.ORMQ_BENCH_ROUNDS ?? 3);
  const backlogSizes = [tasks, tasks * 10, ...(process.env.ORMQ_BENCH_HUGE === "1" ? [1_000_000] : [])];
  const dir = mkdtempSync(join(tmpdir(), "ormq-bench-"));
  const pg = databases.includes("postgres") ? await startBenchPostgres() : undefined;
  const mariadb = databases.includes("mariadb") ? await startBenchMariaDb() : undefined;
  if (mariadb === null) {
    console.log("MariaDB left out: mariadb-server is not installed (apt-get install mariadb-server) and ORMQ_BENCH_MARIADB_URL is not set");
    databases.splice(databases.indexOf("mariadb"), 1);
  }
  const dbs = new Databases(dir, pg?.url ?? "", mariadb?.url ?? "");
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
  /** What runs on MariaDB (the others measure what PostgreSQL and SQLite already show). */
  const ON_MARIADB = new Set<Scenario>(["enqueue", "drain", "latency", "others", "flow", "workflows", "integrations"]);
  const run = async (what: Scenario, database: DatabaseName | null, fn: () => Promise<void>) => {
    if (!only.has(what) || (database && !databases.includes(database))) return;
    if (database === "mariadb" && !ON_MARIADB.has(what)) return;
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
      await run("enqueue", database, async () => {
        (await enqueue(dbs, database, tasks)).forEach(record);
        const bulk = Math.min(tasks, 10_000);
        if (database === "postgres") record(await graphileEnqueue(dbs, bulk));
        if (database === "sqlite") record(await plainjobEnqueue(dbs, bulk));
      });
      await run("drain", database, async () => {
        // The defaults first: what a user who sets nothing gets.
        record(await drain(dbs, database, tasks, { history: true }));
        record(await drain(dbs, database, tasks, { history: false }));
        record(await drain(dbs, database, tasks, { concurrency: 1, history: true }));
        // What claiming ahead buys: the same without a buffer (claims for free slots only).
        record(await drain(dbs, database, tasks, { prefetch: 0, history: true }));
        record(await drain(dbs, database, tasks, { ...TUNED, history: true }));
        record(await drain(dbs, database, tasks, { ...TUNED, history: false }));
        record(await drain(dbs, database, tasks, { ...TUNED, history: false, keepSucceeded: false }));
      });
      await run("backlog", database, async () => {
        for (const size of backlogSizes) record(await drain(dbs, database, size, { history: true }, "backlog"));
      });
      await run("latency", database, async () => {
        for (const drained of [0, tasks]) {
          (await latency(dbs, database, samples, "same", drained)).forEach(record);
          if (database === "postgres") {
            (await latency(dbs, database, samples, "other", drained)).forEach(record);
            (await graphileLatency(dbs, samples, drained)).forEach(record);
          } else if (database === "sqlite") {
            (await plainjobLatency(dbs, samples, drained)).forEach(record);
          }
        }
      });
      await run("scheduled", database, async () => record(await scheduled(dbs, database, Math.min(samples, 200))));
      await run("memory", database, async () => {
        for (const size of [tasks, tasks * 10]) record(await memory(dbs, database, size));
      });
    }
    // Head to head: ormq at its defaults, and tuned (with history; without, as the other queues
    // keep none; and deleting succeeded tasks too, as graphile-worker does), and the other queue
    // at its defaults and tuned, alternating, ORMQ_BENCH_ROUNDS times each (three by default);
    // the medians are compared, so a burst of load on a shared machine hits all of them. Each
    // drain runs in a new process of its own, as a user's program does (see ownProcess.ts).
    const headToHead = async (database: DatabaseName, theirs: Record<string, () => Promise<Result>>) => {
      const ormq = (settings: DrainSettings) => () => inOwnProcess(dbs, tasks, { queue: "ormq", database, settings });
      const ours: Record<string, () => Promise<Result>> = {
        defaults: ormq({ history: true }),
        // The same with a dashboard open on the database: its reads must not slow the worker.
        watched: ormq({ history: true, dashboard: true }),
        tuned: ormq({ ...TUNED, history: true }),
        quiet: ormq({ ...TUNED, history: false }),
        lean: ormq({ ...TUNED, history: false, keepSucceeded: false }),
      };
      const sides = Object.entries({ ...ours, ...theirs });
      const runs = new Map<string, Result[]>(sides.map(([name]) => [name, []]));
      for (let i = 0; i < rounds; i++) {
        for (const [name, fn] of i % 2 === 0 ? sides : [...sides].reverse()) runs.get(name)!.push(await fn());
      }
      for (const list of runs.values()) {
        const sorted = [...list].sort((a, b) => a.tasksPerSecond! - b.tasksPerSecond!);
        const median = sorted[Math.floor(sorted.length / 2)];
        record({ ...median, scenario: "head-to-head", variant: `${median.variant}; median of ${rounds}, alternating (${sorted.map((r) => r.tasksPerSecond).join(", ")})` });
      }
    };
    await run("others", "postgres", () =>
      headToHead("postgres", {
        graphileDefaults: () => inOwnProcess(dbs, tasks, { queue: "graphile-worker", batching: null }),
        graphileBatched: () => inOwnProcess(dbs, tasks, { queue: "graphile-worker", batching: "batched" }),
        graphileMatched: () => inOwnProcess(dbs, tasks, { queue: "graphile-worker", batching: "matched" }),
      }),
    );
    await run("others", "sqlite", () => headToHead("sqlite", { plainjob: () => inOwnProcess(dbs, tasks, { queue: "plainjob" }) }));
    // MariaDB beside ormq on PostgreSQL in the same run: the defaults, and tuned, alternating.
    if (databases.includes("postgres")) {
      await run("others", "mariadb", () =>
        headToHead("mariadb", {
          postgresDefaults: async () => {
            const r = await inOwnProcess(dbs, tasks, { queue: "ormq", database: "postgres", settings: { history: true } });
            return { ...r, variant: `${r.variant}, beside MariaDB` };
          },
        }),
      );
    }
    // Behind PgBouncer: the wake-up through listenUrl against no pooler at all.
    await run("pooler", "postgres", async () => {
      if (pgbouncerAvailable()) (await poolerLatency(dbs, samples)).forEach(record);
      else console.log("pooler scenario skipped: no pgbouncer program on this machine");
    });
    // Prune of a big backlog of finished tasks under a running drain (10x the drain size, or
    // 1,000,000 with ORMQ_BENCH_HUGE=1).
    await run("prune", "postgres", async () => (await pruneDuringDrain(dbs, process.env.ORMQ_BENCH_HUGE === "1" ? 1_000_000 : tasks * 10, tasks)).forEach(record));
    // Ten minutes of churn (ORMQ_BENCH_CHURN_MS): only when asked for by name, it is long.
    if (only.has("churn") && !full) {
      await run("churn", "postgres", async () => (await churn(dbs, Number(process.env.ORMQ_BENCH_CHURN_MS ?? 600_000))).forEach(record));
    }
    // Flow control's cost: limited and rate-limited drains beside an unlimited one; unique enqueue.
    for (const database of databases) {
      await run("flow", database, async () => {
        (await limitedDrains(dbs, database, tasks)).forEach(record);
        (await uniqueEnqueue(dbs, database, 2_000)).forEach(record);
        // The case that deadlocks other queues on MySQL (issue 27), on the servers.
        if (database !== "sqlite") record(await keyedWorkers(dbs, database, tasks));
      });
    }
    // The dashboard's pages over a big table (a million tasks with ORMQ_BENCH_HUGE=1).
    for (const database of databases) {
      await run("dashboard", database, async () => (await dashboardPages(dbs, database, process.env.ORMQ_BENCH_HUGE === "1" ? 1_000_000 : tasks * 10)).forEach(record));
    }
    // Workflows: a fan-out and a fan-in of 10,000 beside as many independent tasks (issue 28).
    for (const database of databases) {
      await run("workflows", database, async () => (await workflows(dbs, database, Math.min(tasks, 10_000))).forEach(record));
    }
    // NestJS, OpenTelemetry and fairness (issue 29): what the integrations cost.
    for (const database of databases) {
      await run("integrations", database, async () => {
        (await otelCost(dbs, database, tasks)).forEach(record);
        // Tenant A's 100,000 queued first (5x the drain size: ORMQ_BENCH_TASKS scales it), then 100 each for B-J.
        (await fairness(dbs, database, tasks * 5, Math.max(1, Math.round(tasks / 200)))).forEach(record);
      });
    }
    // What running run() in a thread or a child process costs, against the event loop.
    for (const database of databases) {
      await run("executors", database, async () => (await executors(dbs, database, Math.min(tasks, 5_000))).forEach(record));
    }
    // Many worker processes on one PostgreSQL (twice the drain size, so each process has work).
    await run("scaling", "postgres", async () => {
      for (const processes of [1, 2, 4, 8]) record(await scaling(dbs, tasks * 2, processes));
    });

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
    if (pg || mariadb) await dbs.dropAll().catch(() => {});
    await pg?.stop();
    await mariadb?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
