/**
 * A worker's options, resolved: the settings from the table (worker/settings.ts), with what only
 * code gives (the DataSource, the logger, the signal, …) checked and filled in beside them.
 */
import type { DependencyContainer } from "tsyringe";
import type { DataSource } from "typeorm";
import type { TaskStatus } from "../../entities/status";
import { resolveDataSource } from "../dataSource";
import { InvalidOptionError } from "../errors";
import { createLogger, getDefaultLogger, type Logger } from "../logger";
import type { OrmqMetrics } from "./attemptFinished";
import type { TaskClass } from "../registry";
import { duration, integer } from "../settings/parsers";
import { MAX_DELAY_MS, MAX_TIMER_MS } from "../storable";
import type { AttemptFinished } from "./attemptFinished";
import { resolveWorkerSettings, TIMER_NOTE, type WorkerSettings } from "./settings";
import type { SettingSources, WorkerOptions } from "./workerOptions";

export type { AttemptFinished, SettingSources, WorkerOptions };

/** Every option a worker runs with: the settings (less the log level, which made the logger) and the code's. */
export interface ResolvedOptions extends Omit<WorkerSettings, "logLevel"> {
  dataSource: DataSource;
  prune: { olderThan: number; statuses?: TaskStatus[]; intervalMs: number } | null;
  signal: AbortSignal | undefined;
  logger: Logger;
  container: DependencyContainer | undefined;
  resolver: ((token: unknown) => unknown) | undefined;
  metrics: OrmqMetrics | undefined;
  onAttemptFinished: ((event: AttemptFinished) => void) | undefined;
}

/** What only code gives: the options that are not settings. */
export type CodeOptions = Omit<WorkerOptions, keyof WorkerSettings>;

/**
 * Fills in defaults and rejects bad values with a message that names the option. Flags win over
 * the environment, which wins over `given` (options in code), which wins over defaults.
 */
export function resolveOptions(cls: TaskClass, given: WorkerOptions = {}, sources: SettingSources = {}): ResolvedOptions {
  return completeOptions(cls, resolveWorkerSettings(given, sources), given);
}

/**
 * Settings resolved once already (the CLI resolves its own at the edge), completed with what only
 * code gives. Nothing here reads a flag or the environment.
 */
export function completeOptions(cls: TaskClass, settings: WorkerSettings, code: CodeOptions): ResolvedOptions {
  const { logLevel, ...rest } = settings;
  return {
    ...rest,
    dataSource: resolveDataSource(cls, code.dataSource),
    prune: code.prune
      ? {
          olderThan: olderThan.check(code.prune.olderThan, "option `prune.olderThan`"),
          statuses: code.prune.statuses,
          intervalMs: pruneInterval.check(code.prune.intervalMs ?? 3_600_000, "option `prune.intervalMs`"),
        }
      : null,
    signal: code.signal,
    logger: code.logger ?? (logLevel ? createLogger(logLevel) : getDefaultLogger()),
    container: code.container,
    resolver: checkResolver(code.resolver),
    metrics: code.metrics,
    onAttemptFinished: code.onAttemptFinished,
  };
}

function checkResolver(resolver: unknown): ((token: unknown) => unknown) | undefined {
  if (resolver !== undefined && typeof resolver !== "function") throw new InvalidOptionError("option `resolver` must be a function (token) => service");
  return resolver as ((token: unknown) => unknown) | undefined;
}

// prune is an object, so not a setting of the table; its two numbers are checked by the same kinds.
const olderThan = integer({ min: 0, max: MAX_DELAY_MS, why: "(100 years)" });
const pruneInterval = duration({ min: 1, max: MAX_TIMER_MS, why: TIMER_NOTE });
