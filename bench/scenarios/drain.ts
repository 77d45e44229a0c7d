/**
 * Drain: N no-op tasks already queued, one worker in this process, tasks/s until the queue is
 * empty. The backlog-growth scenario is the same at larger N. Memory: the same drain in a child
 * process that reports its peak RSS.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import type { DataSource } from "typeorm";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { instrumentOrmq } from "../../src/opentelemetry";
import { processN, type WorkerOptions } from "../../src";
import { cpuNow, cpuPerTask, Databases, fill, LeanNoop, Noop, open, QuietNoop, rate, type DatabaseName, type Result } from "../common";

/** How long a dashboard runs before the drain it watches starts. */
const SETTLE_MS = 3_000;

/**
 * Tuned worker settings for many short tasks: more slots and a fixed buffer, claims of 1,000 (the
 * most a worker leaves unwritten). Drains of 20,000 in new processes, six alternating rounds
 * twice: 100 / 900 read 16-18% above 50 / 450 and above 200 / 800 or 200 / 1,800 (FINDINGS).
 */
export const TUNED = { concurrency: 100, prefetch: 900 } as const;

export interface DrainSettings {
  /** Unset: the worker's default (10). */
  concurrency?: number;
  /** Unset: the worker's default ("auto"). */
  prefetch?: number | "auto";
  history: boolean;
  /** false: succeeded tasks are deleted (`static keepSucceeded = false`, with history off). */
  keepSucceeded?: boolean;
  /** A dashboard open during the drain, in another process (see bench/dashboardLoad.ts). */
  dashboard?: boolean;
  /**
   * ormq/opentelemetry installed (issue 29): "api" with no SDK registered (the API's no-op tracer
   * and meter: what an application that has not set up OpenTelemetry pays), "sdk" with a tracer
   * provider whose batch processor drops the spans (the tracing itself, no exporter's I/O).
   */
  otel?: "api" | "sdk";
}

/** The drain's variant in words, which RESULTS.md's targets look for. */
export function drainVariant(settings: DrainSettings): string {
  const slots = settings.concurrency === undefined && settings.prefetch === undefined
    ? "defaults (concurrency 10, prefetch auto)"
    : `concurrency ${settings.concurrency ?? "10 (default)"}, prefetch ${settings.prefetch ?? "auto (default)"}`;
  const kept = settings.keepSucceeded === false ? ", succeeded tasks deleted" : "";
  const watched = settings.dashboard ? ", a dashboard open (3 clients refreshing its overview every second)" : "";
  const traced = settings.otel === "api" ? ", ormq/opentelemetry installed, no SDK registered" : settings.otel === "sdk" ? ", ormq/opentelemetry installed, an SDK tracer recording every span" : "";
  return `${slots}, history ${settings.history ? "on" : "off"}${kept}${watched}${traced}`;
}

export async function drain(databases: Databases, database: DatabaseName, tasks: number, settings: DrainSettings, scenario = "drain"): Promise<Result> {
  const url = await databases.fresh(database);
  const ds = await open(url);
  let dashboard: ChildProcess | undefined;
  try {
    if (settings.keepSucceeded === false && settings.history) throw new Error("drain: the bench's class that deletes succeeded tasks has history off");
    const cls = settings.keepSucceeded === false ? LeanNoop : settings.history ? Noop : QuietNoop;
    await fill(ds, cls, tasks);
    // Only what the settings name is set: unset means the worker's own default.
    const options: WorkerOptions = { dataSource: ds, logger: pino({ level: "warn" }) };
    if (settings.concurrency !== undefined) options.concurrency = settings.concurrency;
    if (settings.prefetch !== undefined) options.prefetch = settings.prefetch;
    if (settings.dashboard) {
      dashboard = await startDashboardLoad(url);
      // Left open: a process that just started still compiles and collects in the background for
      // a few seconds, which is its start's cost, not its reads'.
      await sleep(SETTLE_MS);
    }
    const uninstall = settings.otel ? instrument(ds, settings.otel) : () => {};
    const cpu0 = cpuNow();
    const t0 = performance.now();
    const summary = await processN(cls, tasks, options).finally(uninstall);
    const ms = performance.now() - t0;
    const cpu = cpuPerTask(cpu0, cpuNow(), tasks, database);
    if (summary.succeeded !== tasks) throw new Error(`drain: ${summary.succeeded} of ${tasks} tasks succeeded`);
    return {
      scenario,
      database,
      variant: drainVariant(settings),
      tasks,
      tasksPerSecond: rate(tasks, ms),
      ...cpu,
    };
  } finally {
    if (dashboard) await stopChild(dashboard);
    await ds.destroy();
  }
}

/** Installs ormq/opentelemetry on `ds` (see DrainSettings.otel); returns its uninstall. */
function instrument(ds: DataSource, how: "api" | "sdk"): () => void {
  if (how === "api") return instrumentOrmq(ds, { queueGauges: false });
  const dropped = { export: (_spans: unknown, done: (r: { code: number }) => void) => done({ code: 0 }), shutdown: async () => {} };
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(dropped)] });
  const uninstall = instrumentOrmq(ds, { tracerProvider, queueGauges: false });
  return () => {
    uninstall();
    void tracerProvider.shutdown();
  };
}

/** Starts bench/dashboardLoad.js on the database; resolves once it serves. */
function startDashboardLoad(url: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [join(__dirname, "..", "dashboardLoad.js"), url], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise<ChildProcess>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => (String(d).includes("ready") ? resolve(child) : undefined));
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`the dashboard load exited with ${code} before it was ready`)));
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

/** Peak RSS of a worker process draining `tasks` at the defaults. */
export async function memory(databases: Databases, database: DatabaseName, tasks: number): Promise<Result> {
  const url = await databases.fresh(database);
  const ds = await open(url);
  try {
    await fill(ds, Noop, tasks);
  } finally {
    await ds.destroy();
  }
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, join(__dirname, "..", "rssWorker.js"), url, String(tasks)], { stdio: ["ignore", "pipe", "inherit"] });
    let text = "";
    child.stdout.on("data", (d) => (text += d));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve(text) : reject(new Error(`rss worker exited with ${code}`))));
  });
  const { maxRssKb, ms } = JSON.parse(out) as { maxRssKb: number; ms: number };
  return {
    scenario: "memory",
    database,
    variant: `peak RSS of a worker process, defaults`,
    tasks,
    rssMb: Math.round(maxRssKb / 1024),
    tasksPerSecond: rate(tasks, ms),
  };
}
