import { availableParallelism } from "node:os";
import type { DependencyContainer } from "tsyringe";
import type { DataSource } from "typeorm";
import type { TaskStatus } from "../../entities/status";
import { InvalidOptionError } from "../errors";
import { createLogger, getDefaultLogger, LOG_LEVELS, type Logger } from "../logger";
import type { OrmqMetrics } from "../metrics";
import type { TaskClass } from "../registry";
import { MAX_DELAY_MS, MAX_TIMER_MS } from "../storable";
import { resolveDataSource } from "../dataSource";
import type { AttemptFinished } from "./attemptFinished";
import { AUTO_MAX_HELD } from "./prefetchGauge";
import { readSettings } from "./settings";
import type { SettingSources, WorkerOptions } from "./workerOptions";

export type { AttemptFinished, SettingSources, WorkerOptions };

/**
 * The most of anything a worker counts (concurrency, batch size, prefetch, threads, abandoned
 * runs): far beyond what one process can use, and small enough that nothing derived from it
 * overflows.
 */
const MAX_COUNT = 100_000;

export interface ResolvedOptions {
  dataSource: DataSource;
  types: string[] | null;
  queues: string[] | null;
  concurrency: number;
  batchSize: number;
  /** A fixed buffer, or "auto" (the default): see PrefetchGauge. */
  prefetch: number | "auto";
  pollIntervalMs: number;
  pooler: "none" | "transaction";
  listenUrl: string | null;
  scheduler: boolean;
  gracePeriodMs: number;
  leaseMs: number;
  heartbeatIntervalMs: number;
  rescueIntervalMs: number;
  maxAbandonedRuns: number;
  hookTimeoutMs: number;
  prune: { olderThan: number; statuses?: TaskStatus[]; intervalMs: number } | null;
  signal: AbortSignal | undefined;
  logger: Logger;
  container: DependencyContainer | undefined;
  threads: number;
  taskProcesses: number;
  taskProcessMaxTasks: number;
  taskProcessRecycleMb: number;
  bootstrap: string | null;
  metrics: OrmqMetrics | undefined;
  onAttemptFinished: ((event: AttemptFinished) => void) | undefined;
}

/**
 * Fills in defaults and rejects bad values with a message that names the option. Flags win over
 * the environment, which wins over `given` (options in code), which wins over defaults.
 */
export function resolveOptions(cls: TaskClass, given: WorkerOptions = {}, sources: SettingSources = {}): ResolvedOptions {
  const fromFlags = readSettings(sources.flags ?? {}, "flags");
  // A setting given as a flag is not read from the environment at all: a bad value there is moot.
  const options: WorkerOptions = {
    ...given,
    ...readSettings(sources.env ?? process.env, "env", new Set(Object.keys(fromFlags))),
    ...fromFlags,
  };
  const dataSource = resolveDataSource(cls, options.dataSource);
  const concurrency = positiveInteger("concurrency", options.concurrency ?? 10, MAX_COUNT);
  const queues = options.queues ?? null;
  if (queues !== null) {
    if (!Array.isArray(queues) || queues.length === 0) throw new InvalidOptionError("option `queues` must be a non-empty array of queue names");
    for (const q of queues) {
      if (typeof q !== "string" || q.trim() === "") throw new InvalidOptionError(`option \`queues\` has an empty or non-string name: ${JSON.stringify(q)}`);
    }
  }
  const prefetch = options.prefetch === undefined || options.prefetch === "auto" ? "auto" : nonNegativeInteger("prefetch", options.prefetch, MAX_COUNT, 'or "auto"');
  const leaseMs = duration("leaseMs", options.leaseMs ?? 30_000);
  const heartbeatIntervalMs = duration("heartbeatIntervalMs", options.heartbeatIntervalMs ?? Math.min(5_000, Math.floor(leaseMs / 3)));
  if (heartbeatIntervalMs * 2 > leaseMs) {
    throw new InvalidOptionError(
      `option \`heartbeatIntervalMs\` (${heartbeatIntervalMs}) must be at most half of \`leaseMs\` (${leaseMs}), or live tasks would be rescued`,
    );
  }
  const types = options.types ?? null;
  if (types !== null && (!Array.isArray(types) || types.length === 0 || types.some((t) => typeof t !== "string" || t === ""))) {
    throw new InvalidOptionError("option `types` must be a non-empty array of task type keys");
  }
  const logLevel = options.logLevel;
  if (logLevel !== undefined && !LOG_LEVELS.includes(logLevel)) {
    throw new InvalidOptionError(`log level must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(logLevel)}`);
  }
  return {
    dataSource,
    types,
    queues,
    concurrency,
    leaseMs,
    heartbeatIntervalMs,
    rescueIntervalMs: duration("rescueIntervalMs", options.rescueIntervalMs ?? 5_000),
    prefetch,
    batchSize: positiveInteger("batchSize", options.batchSize ?? Math.min(MAX_COUNT, prefetch === "auto" ? Math.max(concurrency, AUTO_MAX_HELD) : concurrency + prefetch), MAX_COUNT),
    pollIntervalMs: duration("pollIntervalMs", options.pollIntervalMs ?? 1_000),
    pooler: pooler(options.pooler),
    listenUrl: listenUrl(options.listenUrl),
    scheduler: onOff("scheduler", options.scheduler ?? true),
    gracePeriodMs: nonNegativeInteger("gracePeriodMs", options.gracePeriodMs ?? 10_000, MAX_TIMER_MS, TIMER_NOTE),
    maxAbandonedRuns: positiveInteger("maxAbandonedRuns", options.maxAbandonedRuns ?? 5, MAX_COUNT),
    hookTimeoutMs: duration("hookTimeoutMs", options.hookTimeoutMs ?? 30_000),
    prune: options.prune
      ? {
          olderThan: nonNegativeInteger("prune.olderThan", options.prune.olderThan, MAX_DELAY_MS, "(100 years)"),
          statuses: options.prune.statuses,
          intervalMs: duration("prune.intervalMs", options.prune.intervalMs ?? 3_600_000),
        }
      : null,
    signal: options.signal,
    logger: options.logger ?? (logLevel ? createLogger(logLevel) : getDefaultLogger()),
    container: options.container,
    threads: positiveInteger("threads", options.threads ?? Math.min(concurrency, availableParallelism()), 1_024),
    taskProcesses: positiveInteger("taskProcesses", options.taskProcesses ?? Math.min(concurrency, availableParallelism()), 1_024),
    taskProcessMaxTasks: positiveInteger("taskProcessMaxTasks", options.taskProcessMaxTasks ?? 1_000, MAX_COUNT),
    taskProcessRecycleMb: positiveInteger("taskProcessRecycleMb", options.taskProcessRecycleMb ?? 1_024, 1_048_576),
    bootstrap: options.bootstrap ?? null,
    metrics: options.metrics,
    onAttemptFinished: options.onAttemptFinished,
  };
}


function onOff(name: string, value: unknown): boolean {
  if (typeof value === "boolean") return value;
  throw new InvalidOptionError(`option \`${name}\` must be true or false, got ${show(value)}`);
}

function pooler(value: unknown): "none" | "transaction" {
  if (value === undefined || value === "none" || value === "transaction") return value ?? "none";
  throw new InvalidOptionError(`option \`pooler\` must be "none" or "transaction", got ${show(value)}`);
}

function listenUrl(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  let url: URL | undefined;
  try {
    url = typeof value === "string" ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== "postgres:" && url.protocol !== "postgresql:")) {
    // The value may hold a password: say what is wrong without repeating it.
    throw new InvalidOptionError("option `listenUrl` must be a postgres:// connection URL");
  }
  return value as string;
}

/** Why durations stop at 2^31 - 1 ms: said in each refusal, so the limit is not a surprise. */
const TIMER_NOTE = "(about 24.8 days: node's timers cannot wait longer, and a longer one would fire at once)";

/** A duration option in ms: a positive integer a node timer can wait for. */
function duration(name: string, value: unknown): number {
  return positiveInteger(name, value, MAX_TIMER_MS, TIMER_NOTE);
}

function positiveInteger(name: string, value: unknown, max: number, why = ""): number {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > max) {
    throw new InvalidOptionError(`option \`${name}\` must be an integer from 1 to ${max}${why ? ` ${why}` : ""}, got ${show(value)}`);
  }
  return value as number;
}

function nonNegativeInteger(name: string, value: unknown, max: number, why = ""): number {
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > max) {
    throw new InvalidOptionError(`option \`${name}\` must be an integer from 0 to ${max}${why ? ` ${why}` : ""}, got ${show(value)}`);
  }
  return value as number;
}

/** A value as an error message shows it (JSON.stringify drops NaN, Infinity and bigints). */
function show(value: unknown): string {
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return typeof value;
  }
}
