/**
 * `ormq process [type…]`: runs a worker in this process, or with `--processes N`, a supervisor that
 * forks N worker processes (supervisor.ts). Optional: a live progress bar for `--until-empty` in a
 * terminal (progress.ts), and Prometheus metrics on `--metrics-port` (metricsServer.ts).
 */
import cluster from "node:cluster";
import type { Server } from "node:http";
import { BaseTaskEntity } from "../../../entities/BaseTaskEntity";
import { countUnfinished } from "../../admin/stats";
import type { OrmqMetrics } from "../../worker/attemptFinished";
import { loadMetrics } from "./promClient";
import { createLogger } from "../../logger";
import { completeOptions, type ResolvedOptions } from "../../worker/options";
import { InvalidOptionError } from "../../errors";
import { runForever, runN } from "../../worker/run";
import type { ProcessSummary } from "../../worker/worker";
import { connect } from "../connect";
import { printJson, printRecord } from "../output";
import { readProcessSettings, type ProcessFlags, type ProcessSettings } from "./flags";
import { serveMetrics } from "./metricsServer";
import { Progress } from "./progress";
import { STOP, supervise } from "./supervisor";
import { ormqFor } from "../../client/client";

/** Runs the command; resolves with the process's exit code. */
export async function processCommand(types: string[], flags: ProcessFlags): Promise<number> {
  // The one place this command reads its settings: a bad flag or variable fails here, before the
  // database is opened or a process forked.
  const settings = readProcessSettings(types, flags, process.env);
  if (settings.processes > 1 && cluster.isPrimary) return supervise(settings, flags.untilEmpty === true);
  return runWorker(settings, flags);
}

async function runWorker(settings: ProcessSettings, flags: ProcessFlags): Promise<number> {
  const showProgress = flags.untilEmpty === true && process.stdout.isTTY === true && cluster.isPrimary;
  // Log lines would tear the progress bar: below warn only when asked for. Logs go to stderr, so
  // stdout carries only the command's output (a summary, --json).
  const logger = createLogger(settings.worker.logLevel ?? (showProgress ? "warn" : "info"), { fd: 2 });
  const conn = await connect(flags, { command: "process", needsClasses: true });
  const stop = new AbortController();
  const onMessage = (message: unknown) => message === STOP && stop.abort();
  process.on("message", onMessage);
  let server: Server | undefined;
  let progress: Progress | undefined;
  try {
    let metrics: OrmqMetrics | undefined;
    if (settings.metricsPort !== null) {
      // In a cluster, the supervisor serves the metrics it gathers from the worker processes'
      // global registries; alone, this process serves its own.
      const { prom, createMetrics } = loadMetrics();
      const registry = cluster.isWorker ? prom.register : new prom.Registry();
      prom.collectDefaultMetrics({ register: registry });
      metrics = createMetrics({ dataSource: conn.dataSource, registry });
      if (cluster.isPrimary) server = await serveMetrics(settings.metricsPort, () => registry.metrics(), registry.contentType, logger);
    }
    const resolved: ResolvedOptions = completeOptions(BaseTaskEntity, settings.worker, {
      dataSource: conn.dataSource,
      container: conn.container,
      resolver: conn.resolver,
      logger,
      signal: stop.signal,
      metrics,
      onAttemptFinished: showProgress ? (event) => progress?.finished(event) : undefined,
    });
    if (showProgress) {
      const all = ormqFor(conn.dataSource).registry.typesFor(BaseTaskEntity).map((t) => t.key);
      progress = new Progress(() => countUnfinished({ dataSource: conn.dataSource, types: resolved.types ?? all, queues: resolved.queues }));
      await progress.start();
    }
    let summary: ProcessSummary;
    try {
      summary = flags.untilEmpty ? await untilEmpty(resolved, stop) : await runForever(BaseTaskEntity, resolved);
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
async function untilEmpty(resolved: ResolvedOptions, stop: AbortController): Promise<ProcessSummary> {
  let signals = 0;
  const onSignal = () => {
    if (++signals === 1) return stop.abort();
    // Running tasks are rescued when their leases expire.
    process.exit(130);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    return await runN(BaseTaskEntity, resolved, Number.MAX_SAFE_INTEGER);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

