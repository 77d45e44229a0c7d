import cluster from "node:cluster";
import type { Server } from "node:http";
import { createLogger } from "../../logger";
import type { ProcessSettings } from "./flags";
import { serveMetrics } from "./metricsServer";
import { loadMetrics } from "./promClient";

/** Messages from the supervisor to a worker process. */
export const STOP = "ormq:stop";

/**
 * The supervisor: forks `count` worker processes running the same command, restarts one that
 * exits with an error (backing off when it crashes again and again), and stops them all on
 * SIGINT/SIGTERM (a second signal cuts their grace period short). `settings` were resolved by
 * processCommand; each worker process resolves its own from the same flags and environment.
 */
export async function supervise(settings: ProcessSettings, untilEmpty: boolean): Promise<number> {
  const count = settings.processes;
  const logger = createLogger(settings.worker.logLevel ?? "info", { fd: 2 });
  let stopping = 0;
  let failedExits = 0;
  let crashesInARow = 0;
  const live = new Set<number>();
  let server: Server | undefined;
  if (settings.metricsPort !== null) {
    const aggregator = new (loadMetrics().prom.AggregatorRegistry)();
    server = await serveMetrics(settings.metricsPort, () => aggregator.clusterMetrics(), aggregator.contentType, logger);
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

