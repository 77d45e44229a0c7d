/**
 * Prometheus metrics (prom-client). A worker records what it finishes; the queue's state (ready
 * tasks, the oldest one's age, live workers) is read from the database when the registry is
 * scraped, so every worker and every dashboard sees the same numbers.
 *
 *   const metrics = createMetrics({ dataSource });            // its own registry
 *   const metrics = createMetrics({ dataSource, registry });  // into an app's existing registry
 *   processForever(MyTask, { metrics });
 *   // serve metrics.registry.metrics() at /metrics, or let `ormq process --metrics-port` do it
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { DataSource } from "typeorm";
import { getReadiness } from "./admin/stats";
import type { OrmqMetrics } from "./worker/attemptFinished";

export interface MetricsOptions {
  /** The database whose queue state the gauges report. Without it, only the worker metrics exist. */
  dataSource?: DataSource;
  /** Register into this registry (an app's own). Default: a new one. */
  registry?: Registry;
  /** Prefix of every metric name. Default `ormq_`. */
  prefix?: string;
}

export type { OrmqMetrics };

/** How long one database read serves the gauges: a scrape reads all three at once. */
const READ_CACHE_MS = 1_000;

/**
 * Creates ormq's metrics:
 * - `ormq_tasks_finished_total{type,outcome}`: attempts finished, by how they ended;
 * - `ormq_task_run_seconds{type}`: how long attempts ran (histogram);
 * - `ormq_tasks_ready{queue}`: tasks pending and due;
 * - `ormq_oldest_ready_task_age_seconds{queue}`: how long the oldest ready task has waited;
 * - `ormq_workers_live`: workers that heartbeat within the last minute;
 * - `ormq_database_retries_total{reason}`: worker transactions run again after a deadlock or a
 *   lock wait timeout (MySQL: `deadlock`, `lock_wait_timeout`), none of them a failed attempt.
 * The gauges read the database at scrape time; in a cluster (`ormq process --processes N`) they
 * are taken from one process, not summed.
 */
export function createMetrics(options: MetricsOptions = {}): OrmqMetrics {
  const registry = options.registry ?? new Registry();
  const prefix = options.prefix ?? "ormq_";
  const finished = new Counter({
    name: `${prefix}tasks_finished_total`,
    help: "Task attempts finished, by type and outcome (succeeded, failed, retried, snoozed, cancelled).",
    labelNames: ["type", "outcome"],
    registers: [registry],
  });
  const runTime = new Histogram({
    name: `${prefix}task_run_seconds`,
    help: "How long task attempts took, from start to outcome written.",
    labelNames: ["type"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  const retries = new Counter({
    name: `${prefix}database_retries_total`,
    help: "Worker transactions run again after a deadlock or a lock wait timeout (MySQL), by reason.",
    labelNames: ["reason"],
    registers: [registry],
  });
  const dataSource = options.dataSource;
  if (dataSource) {
    let cached: { at: number; read: ReturnType<typeof getReadiness> } | undefined;
    const read = () => {
      if (!cached || performance.now() - cached.at > READ_CACHE_MS) {
        cached = { at: performance.now(), read: getReadiness({ dataSource }) };
      }
      return cached.read;
    };
    new Gauge({
      name: `${prefix}tasks_ready`,
      help: "Tasks pending and due, by queue.",
      labelNames: ["queue"],
      registers: [registry],
      aggregator: "first",
      async collect() {
        this.reset();
        for (const q of (await read()).queues) this.set({ queue: q.queue }, q.ready);
      },
    });
    new Gauge({
      name: `${prefix}oldest_ready_task_age_seconds`,
      help: "How long the oldest ready task of each queue has waited.",
      labelNames: ["queue"],
      registers: [registry],
      aggregator: "first",
      async collect() {
        this.reset();
        for (const q of (await read()).queues) this.set({ queue: q.queue }, q.oldestReadyAgeMs / 1000);
      },
    });
    new Gauge({
      name: `${prefix}workers_live`,
      help: "Workers that sent a heartbeat within the last minute.",
      registers: [registry],
      aggregator: "first",
      async collect() {
        this.set((await read()).liveWorkers);
      },
    });
  }
  return {
    registry,
    attemptFinished(event) {
      finished.inc({ type: event.type, outcome: event.outcome });
      runTime.observe({ type: event.type }, event.durationMs / 1000);
    },
    transientRetry(reason) {
      retries.inc({ reason });
    },
  };
}
