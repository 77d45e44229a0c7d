import type { DependencyContainer } from "tsyringe";
import type { DataSource } from "typeorm";
import type { TaskStatus } from "../../entities/status";
import type { Logger } from "../logger";
import type { OrmqMetrics } from "./attemptFinished";
import type { AttemptFinished } from "./attemptFinished";
import type { GivenWorkerSettings } from "./settings";

/** Where settings come from besides code: the environment (default `process.env`) and CLI flags. */
export type { SettingSources } from "../settings/table";

/**
 * Options of `processOne`, `processN` and `processForever`: the worker settings of
 * `WORKER_SETTING_TABLE` (worker/settings.ts: each with its default, bounds and description, also
 * settable as an `ORMQ_…` environment variable, which wins over the value given here so operators
 * can tune a deployed worker without a code change; the `ormq` CLI's flags win over both), and the
 * options below, which only code can give.
 */
export interface WorkerOptions extends GivenWorkerSettings {
  /** The DataSource to work on. Default: the one the task class is bound to (BaseEntity). */
  dataSource?: DataSource;
  /**
   * Prune finished tasks from this worker every `intervalMs` (default one hour): those that
   * finished more than `olderThan` ms ago, in `statuses` (default succeeded and cancelled).
   */
  prune?: { olderThan: number; statuses?: TaskStatus[]; intervalMs?: number };
  /** Stops the worker when aborted (gracefully, as SIGTERM does). */
  signal?: AbortSignal;
  /** Where ormq logs. Default: pino at `logLevel`, pretty in a terminal and JSON otherwise. */
  logger?: Logger;
  /**
   * The tsyringe container tasks resolve their services from (`ctx.resolve(Mailer)`): each attempt
   * gets a child container of it. Default: tsyringe's root container.
   */
  container?: DependencyContainer;
  /**
   * Resolves what `ctx.resolve(token)` asks for (besides the attempt's own EntityManager,
   * DataSource, TaskLogger and TaskContextToken) instead of the tsyringe container: another
   * injector, such as NestJS's (`ormq/nestjs` gives its ModuleRef). A throw is the caller's.
   */
  resolver?: (token: unknown) => unknown;
  /** Prometheus metrics to record into (see `createMetrics`). */
  metrics?: OrmqMetrics;
  /** Called after each attempt's outcome is written (progress displays, custom metrics). */
  onAttemptFinished?: (event: AttemptFinished) => void;
}

