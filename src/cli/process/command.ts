/**
 * `ormq process [type…]`: runs a worker in this process, or with `--processes N`, a supervisor that
 * forks N worker processes (supervisor.ts). Optional: a live progress bar for `--until-empty` in a
 * terminal (progress.ts), and Prometheus metrics on `--metrics-port` (metricsServer.ts).
 */
import cluster from "node:cluster";
import type { Server } from "node:http";
import { collectDefaultMetrics, register as globalRegistry, Registry } from "prom-client";
import { BaseTaskEntity } from "../../../entities/BaseTaskEntity";
import { countUnfinished } from "../../admin/stats";
import { createMetrics } from "../../metrics";
import { createLogger, type Logger } from "../../logger";
import { ormqFor } from "../../client/client";
import { resolveOptions, type WorkerOptions } from "../../worker/options";
import { InvalidOptionError } from "../../errors";
import { processForever, processN } from "../../worker/run";
import { readSettings, WORKER_SETTINGS } from "../../worker/settings";
import type { ProcessSummary } from "../../worker/worker";
import { connect } from "../connect";
import { printJson, printRecord } from "../output";
import { readCliOnly, type CliOnly, type ProcessFlags } from "./flags";
import { serveMetrics } from "./metricsServer";
import { Progress } from "./progress";
import { STOP, supervise } from "./supervisor";

/** Runs the command; resolves with the process's exit code. */
export async function processCommand(types: string[], flags: ProcessFlags): Promise<number> {
  const cliOnly = readCliOnly(flags);
  if (cliOnly.processes > 1 && cluster.isPrimary) return supervise(cliOnly.processes, cliOnly, flags);
  return runWorker(types, flags, cliOnly);
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
      const all = ormqFor(conn.dataSource).registry.typesFor(BaseTaskEntity).map((t) => t.key);
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
    // A refused setting is the caller's input: one line, like every other command's bad input.
    if (err instanceof InvalidOptionError) throw err;
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

