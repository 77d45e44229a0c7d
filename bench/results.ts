/** Writes bench/RESULTS.md: the machine, the versions, every figure, and the targets of issue 6. */
import Database from "better-sqlite3";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { withClient, type Result } from "./common";
import { drainVariant, RECOMMENDED, type DrainSettings } from "./scenarios/drain";

interface Target {
  what: string;
  goal: string;
  measured: string;
  met: boolean | null;
}

export async function writeResults(path: string, results: Result[], run: { tasks: number; pgUrl?: string; loadAtStart: number }): Promise<void> {
  const pgVersion = run.pgUrl ? await withClient(run.pgUrl, async (c) => (await c.query(`SHOW server_version`)).rows[0].server_version as string) : "not run";
  const memory = new Database(":memory:");
  const sqliteVersion = (memory.prepare(`SELECT sqlite_version() AS v`).get() as { v: string }).v;
  memory.close();
  const cpu = cpus();
  const lines = [
    "# ormq benchmark results",
    "",
    "Written by `npm run bench` (bench/run.ts). Figures from one run; machines like this are noisy,",
    "so compare figures within this file, not with another machine's.",
    "",
    `- machine: ${cpu[0]?.model ?? "?"}, ${cpu.length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB RAM`,
    `- node ${process.version}${process.execArgv.length > 0 ? ` (${process.execArgv.join(" ")})` : ""}, PostgreSQL ${pgVersion} (same host, fsync and synchronous_commit on), SQLite ${sqliteVersion} (WAL, synchronous NORMAL)`,
    `- drain size ${run.tasks} no-op tasks; one worker process; recommended settings: concurrency ${RECOMMENDED.concurrency}, prefetch ${RECOMMENDED.prefetch}`,
    `- run at ${new Date().toISOString()}; load average (1 min) ${run.loadAtStart.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end` +
      // The benchmark itself keeps about one core busy: a start above the core count means other work.
      (run.loadAtStart > cpu.length ? " (other work shared the machine)" : ""),
    "- CPU per task: the worker's process, and every PostgreSQL process on this host (sampled from /proc, so background work such as autovacuum and the checkpointer counts too: approximate)",
    "",
    "## Targets (issue 6)",
    "",
    "| target | goal | measured | met |",
    "| --- | --- | --- | --- |",
    ...targets(results).map((t) => `| ${t.what} | ${t.goal} | ${t.measured} | ${t.met === null ? "not measured" : t.met ? "yes" : "**no**"} |`),
    "",
    "## Figures",
    "",
    "| scenario | database | variant | tasks | tasks/s | of ceiling | p50 ms | p95 ms | p99 ms | max ms | peak RSS MB | worker CPU µs/task | server CPU µs/task |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...results.map((r) =>
      [r.scenario, r.database, r.variant, r.tasks, r.tasksPerSecond, r.ofCeiling, r.p50, r.p95, r.p99, r.max, r.rssMb, r.workerCpuUs, r.serverCpuUs]
        .map((v) => (v === undefined ? "" : typeof v === "number" ? v.toLocaleString("en-US") : v))
        .join(" | ")
        .replace(/^/, "| ")
        .replace(/$/, " |"),
    ),
    "",
  ];
  // The hand-written part: what each change bought, and what limits the rest.
  const notes = join(__dirname, "..", "..", "bench", "FINDINGS.md");
  if (existsSync(notes)) lines.push(readFileSync(notes, "utf8"));
  writeFileSync(path, lines.join("\n"));
}

function find(results: Result[], scenario: string, database: string, variant?: (v: string) => boolean, tasks?: number): Result | undefined {
  return results.find((r) => r.scenario === scenario && r.database === database && (!variant || variant(r.variant)) && (tasks === undefined || r.tasks === tasks));
}

function targets(results: Result[]): Target[] {
  const at = (settings: DrainSettings) => (v: string) => v === drainVariant(settings) || v.startsWith(`${drainVariant(settings)};`);
  const recommended = at({ concurrency: RECOMMENDED.concurrency, history: true });
  // The head-to-head medians (alternating runs) when present, else the single runs.
  const quiet = at({ concurrency: RECOMMENDED.concurrency, history: false });
  const lean = at({ concurrency: RECOMMENDED.concurrency, history: false, keepSucceeded: false });
  const pgDrain = find(results, "head-to-head", "postgres", recommended) ?? find(results, "drain", "postgres", recommended);
  const pgQuiet = find(results, "head-to-head", "postgres", quiet) ?? find(results, "drain", "postgres", quiet);
  const pgLean = find(results, "head-to-head", "postgres", lean) ?? find(results, "drain", "postgres", lean);
  const graphile = find(results, "head-to-head", "postgres (graphile-worker)");
  const sqliteDrain = find(results, "head-to-head", "sqlite", recommended) ?? find(results, "drain", "sqlite", recommended);
  const plain = find(results, "head-to-head", "sqlite (plainjob)");
  const out: Target[] = [];
  const ratio = (a?: number, b?: number) => (a && b ? Math.round((a / b) * 100) / 100 : undefined);
  /** A target that one drain be at least `goal` times another's rate. */
  const versus = (what: string, ours: Result | undefined, theirs: Result | undefined, goal: number) => {
    const r = ratio(ours?.tasksPerSecond, theirs?.tasksPerSecond);
    out.push({
      what,
      goal: `≥ ${goal}x`,
      measured: r === undefined ? "" : `${r}x (${ours!.tasksPerSecond} vs ${theirs!.tasksPerSecond} tasks/s)`,
      met: r === undefined ? null : r >= goal,
    });
  };
  versus("PostgreSQL drain vs graphile-worker 0.18 batched (concurrency 10, local queue 500), medians of alternating runs", pgDrain, graphile, 1.25);
  // graphile-worker keeps no history, and deletes a job once it succeeded.
  versus("The same, ormq with history off (`static history = false`; graphile-worker keeps none)", pgQuiet, graphile, 1.25);
  versus("The same, ormq with history off and succeeded tasks deleted (`static keepSucceeded = false`), as graphile-worker does", pgLean, graphile, 1.25);
  for (const database of ["postgres", "sqlite"]) {
    const [small, big] = results.filter((r) => r.scenario === "backlog" && r.database === database).sort((a, b) => a.tasks - b.tasks);
    versus(`${database}: drain at ${big?.tasks ?? "10x"} queued vs at ${small?.tasks ?? "1x"}`, big, small, 0.7);
  }
  const pgLatency = find(results, "latency", "postgres", (v) => v.includes("worker's process"));
  const pgLatencyOther = find(results, "latency", "postgres", (v) => v.includes("another connection"));
  for (const l of [pgLatency, pgLatencyOther]) {
    out.push({
      what: `PostgreSQL latency, ${l?.variant ?? "commit → run() start"}`,
      goal: "p50 ≤ 1.5 ms, p99 ≤ 5 ms",
      measured: l ? `p50 ${l.p50} ms, p99 ${l.p99} ms` : "",
      met: l ? l.p50! <= 1.5 && l.p99! <= 5 : null,
    });
  }
  const sqLatency = find(results, "latency", "sqlite");
  out.push({ what: "SQLite latency within one process", goal: "p50 ≤ 1 ms", measured: sqLatency ? `p50 ${sqLatency.p50} ms, p99 ${sqLatency.p99} ms` : "", met: sqLatency ? sqLatency.p50! <= 1 : null });
  for (const database of ["postgres", "sqlite"]) {
    const s = find(results, "scheduled", database);
    out.push({ what: `${database}: scheduled lateness`, goal: "p95 ≤ 50 ms", measured: s ? `p50 ${s.p50} ms, p95 ${s.p95} ms` : "", met: s ? s.p95! <= 50 : null });
  }
  versus("SQLite drain vs plainjob 0.0.14, medians of alternating runs", sqliteDrain, plain, 2);
  for (const database of ["postgres", "sqlite"]) {
    const e = find(results, "enqueue", database, (v) => v.startsWith("enqueueMany([...]), history on"));
    out.push({ what: `${database}: bulk enqueue (enqueueMany, history on)`, goal: "≥ 50,000 tasks/s", measured: e ? `${e.tasksPerSecond} tasks/s` : "", met: e ? e.tasksPerSecond! >= 50_000 : null });
  }
  return out;
}
