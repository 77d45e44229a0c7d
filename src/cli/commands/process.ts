/**
 * `ormq process [type…]`: runs a worker in this process, or with `--processes N`, a supervisor that
 * forks N worker processes (node's cluster module) and restarts any that crash. Optional: a live
 * progress bar for `--until-empty` in a terminal, and Prometheus metrics on `--metrics-port`.
 */
import cluster from "node:cluster";
import { createServer, type Server } from "node:http";
import { SingleBar } from "cli-progress";
import { AggregatorRegistry, collectDefaultMetrics, register as globalRegistry, Registry } from "prom-client";
import { BaseTaskEntity } from "../../../entities/BaseTaskEntity";
import { countUnfinished } from "../../admin/stats";
import { InvalidOptionError } from "../../errors";
import { createMetrics } from "../../metrics";
import { createLogger, type Logger } from "../../logger";
import { TaskRegistry } from "../../registry";
import { resolveOptions, type AttemptFinished, type WorkerOptions } from "../../worker/options";
import { processForever, processN } from "../../worker/process";
import { parseInteger } from "../../parse";
import { readSettings, WORKER_SETTINGS } from "../../worker/settings";
import type { ProcessSummary } from "../../worker/worker";
import { connect, type ConnectionFlags } from "../connect";
import { printJson, printRecord } from "../output";

export interface ProcessFlags extends ConnectionFlags, Record<string, unknown> {
  processes?: string;
  untilEmpty?: boolean;
  metricsPort?: string;
  json?: boolean;
}

/** Messages from the supervisor to a worker process. */
const STOP = "ormq:stop";

/** Runs the command; resolves with the process's exit code. */
export async function processCommand(types: string[], flags: ProcessFlags): Promise<number> {
  const cliOnly = readCliOnly(flags);
  if (cliOnly.processes > 1 && cluster.isPrimary) return supervise(cliOnly.processes, cliOnly, flags);
  return runWorker(types, flags, cliOnly);
}

interface CliOnly {
  processes: number;
  metricsPort: number | null;
}

function readCliOnly(flags: ProcessFlags): CliOnly {
  const processes = intSetting(flags.processes ?? process.env.ORMQ_PROCESSES, flags.processes ? "--processes" : "ORMQ_PROCESSES", 1) ?? 1;
  const metricsPort = intSetting(flags.metricsPort ?? process.env.ORMQ_METRICS_PORT, flags.metricsPort ? "--metrics-port" : "ORMQ_METRICS_PORT", 0);
  if (metricsPort !== null && metricsPort > 65_535) throw new InvalidOptionError(`metrics port must be at most 65535, got ${metricsPort}`);
  return { processes, metricsPort };
}

function intSetting(raw: string | undefined, label: string, min: number): number | null {
  return raw === undefined || raw === "" ? null : parseInteger(raw, label, min);
}

async function runWorker(types: string[], flags: ProcessFlags, cliOnly: CliOnly): Promise<number> {
  const flagValues: Record<string, string | undefined> = {};
  for (const s of WORKER_SETTINGS) if (typeof flags[s.key] === "string") flagValues[s.key] = flags[s.key] as string;
  if (types.length > 0) flagValues.types = types.join(",");
  const showProgress = flags.untilEmpty === true && process.stdout.isTTY === true && cluster.isPrimary;
  // Log lines would tear the progress bar: below warn only when asked for.
  const explicitLevel = flagValues.logLevel ?? process.env.ORMQ_LOG_LEVEL;
  // Logs go to stderr, so stdout carries only the command's output (a summary, --json).
  const logger: Logger = createLogger(explicitLevel ?? (showProgress ? "warn" : "info"), { fd: 2 });
  readSettings(flagValues, "flags"); // bad flags fail here, before the database is opened
  const conn = await connect(flags, { command: "process", needsClasses: true });
  const stop = new AbortController();
  const onMessage = (message: unknown) => message === STOP && stop.abort();
  process.on("message", onMessage);
  let server: Server | undefined;
  let progress: Progress | undefined;
  try {
    const options: WorkerOptions = {
      dataSource: conn.dataSource,
      container: conn.container,
      logger,
      signal: stop.signal,
      // Thread tasks' threads load the same module by default: it imports the task classes.
      bootstrap: flags.dataSource ?? process.env.ORMQ_DATA_SOURCE,
    };
    if (cliOnly.metricsPort !== null) {
      // In a cluster, the supervisor serves the metrics it gathers from the worker processes'
      // global registries; alone, this process serves its own.
      const registry = cluster.isWorker ? globalRegistry : new Registry();
      collectDefaultMetrics({ register: registry });
      options.metrics = createMetrics({ dataSource: conn.dataSource, registry });
      if (cluster.isPrimary) server = await serveMetrics(cliOnly.metricsPort, () => registry.metrics(), registry.contentType, logger);
    }
    // Resolved once here so a bad flag or type is reported before anything runs.
    const resolved = resolveOptions(BaseTaskEntity, options, { flags: flagValues });
    if (showProgress) {
      const all = TaskRegistry.for(conn.dataSource).typesFor(BaseTaskEntity).map((t) => t.key);
      progress = new Progress(() => countUnfinished({ dataSource: conn.dataSource, types: resolved.types ?? all, queues: resolved.queues }));
      options.onAttemptFinished = (event) => progress!.finished(event);
      await progress.start();
    }
    let summary: ProcessSummary;
    try {
      summary = flags.untilEmpty
        ? await untilEmpty(options, flagValues, stop)
        : await processForever(BaseTaskEntity, options, { flags: flagValues });
    } finally {
      progress?.stop();
    }
    if (flags.json) printJson(summary);
    else if (cluster.isPrimary) printRecord(summary as unknown as Record<string, unknown>);
    return 0;
  } catch (err) {
    logger.error({ err }, "the worker failed");
    return 1;
  } finally {
    process.off("message", onMessage);
    server?.close();
    await conn.close();
  }
}

/** processN until nothing is ready; the first SIGINT/SIGTERM stops it gently, a second exits. */
async function untilEmpty(options: WorkerOptions, flags: Record<string, string | undefined>, stop: AbortController): Promise<ProcessSummary> {
  let signals = 0;
  const onSignal = () => {
    if (++signals === 1) return stop.abort();
    // Running tasks are rescued when their leases expire.
    process.exit(130);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    return await processN(BaseTaskEntity, Number.MAX_SAFE_INTEGER, options, { flags });
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

async function serveMetrics(port: number, read: () => Promise<string>, contentType: string, logger: Logger): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url !== "/metrics") {
      res.writeHead(404).end("metrics are at /metrics\n");
      return;
    }
    read().then(
      (body) => res.writeHead(200, { "content-type": contentType }).end(body),
      (err) => {
        logger.warn({ err }, "could not collect metrics");
        res.writeHead(500).end(String(err));
      },
    );
  });
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(port, resolve));
  server.unref();
  const address = server.address();
  logger.info({ port: typeof address === "object" && address ? address.port : port }, "serving metrics at /metrics");
  return server;
}

/**
 * The supervisor: forks `count` worker processes running the same command, restarts one that
 * exits with an error (backing off when it crashes again and again), and stops them all on
 * SIGINT/SIGTERM (a second signal cuts their grace period short).
 */
async function supervise(count: number, cliOnly: CliOnly, flags: ProcessFlags): Promise<number> {
  const logger = createLogger(process.env.ORMQ_LOG_LEVEL ?? "info", { fd: 2 });
  const untilEmpty = flags.untilEmpty === true;
  let stopping = 0;
  let failedExits = 0;
  let crashesInARow = 0;
  const live = new Set<number>();
  let server: Server | undefined;
  if (cliOnly.metricsPort !== null) {
    const aggregator = new AggregatorRegistry();
    server = await serveMetrics(cliOnly.metricsPort, () => aggregator.clusterMetrics(), aggregator.contentType, logger);
  }
  const done = new Promise<void>((resolve) => {
    const fork = () => {
      const worker = cluster.fork();
      live.add(worker.id);
      worker.on("exit", (code, signal) => {
        live.delete(worker.id);
        const crashed = code !== 0 || signal !== null;
        if (crashed && stopping === 0) {
          crashesInARow++;
          const delay = Math.min(30_000, 500 * 2 ** Math.min(crashesInARow, 6));
          logger.warn({ pid: worker.process.pid, code, signal, restartInMs: delay }, "a worker process exited; restarting it");
          setTimeout(() => (stopping === 0 ? fork() : live.size === 0 && resolve()), delay);
          return;
        }
        if (crashed) failedExits++;
        else crashesInARow = 0;
        if (live.size === 0) resolve();
      });
    };
    for (let i = 0; i < count; i++) fork();
  });
  const onSignal = (name: NodeJS.Signals) => {
    stopping++;
    logger.info({ signal: name, processes: live.size }, stopping === 1 ? "stopping the worker processes" : "stopping the worker processes now");
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (!worker) continue;
      if (stopping === 1) worker.send(STOP);
      // Two signals skip the grace period (see processForever).
      else for (let i = 0; i < 2; i++) worker.process.kill("SIGTERM");
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  logger.info({ processes: count, untilEmpty }, "supervising worker processes");
  try {
    await done;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    server?.close();
  }
  return failedExits > 0 ? 1 : 0;
}

/** How often the progress bar recounts the tasks left. */
const REFRESH_TOTAL_MS = 2_000;

/** The terminal progress bar of `--until-empty`: done / total, rate, failures. */
class Progress {
  private readonly bar = new SingleBar({
    format: "{bar} {value}/{total} tasks | {rate}/s | {failed} failed | {retried} retried | ETA {eta_formatted}",
    hideCursor: true,
    clearOnComplete: false,
    barsize: 30,
  });
  private done = 0;
  private failed = 0;
  private retried = 0;
  private readonly startedAt = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private refreshing = false;

  constructor(private readonly remaining: () => Promise<number>) {}

  async start(): Promise<void> {
    this.bar.start(await this.remaining(), 0, this.payload());
    // The count scans every unfinished task: often enough for a total that grows, rarely enough
    // not to compete with the drain it reports on. The bar itself moves with each finished attempt.
    this.timer = setInterval(() => void this.refresh(), REFRESH_TOTAL_MS);
  }

  finished(event: AttemptFinished): void {
    if (event.outcome === "failed") this.failed++;
    if (event.outcome === "retried" || event.outcome === "snoozed") this.retried++;
    else this.done++;
    this.bar.update(this.done, this.payload());
  }

  stop(): void {
    clearInterval(this.timer);
    this.bar.update(this.done, this.payload());
    this.bar.stop();
  }

  private async refresh(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    // New tasks (enqueued meanwhile, or by tasks) grow the total.
    const remaining = await this.remaining().catch(() => null);
    this.refreshing = false;
    if (remaining !== null) this.bar.setTotal(this.done + remaining);
    this.bar.update(this.done, this.payload());
  }

  private payload() {
    const seconds = (performance.now() - this.startedAt) / 1000;
    return { rate: seconds > 0 ? Math.round(this.done / seconds) : 0, failed: this.failed, retried: this.retried };
  }
}
