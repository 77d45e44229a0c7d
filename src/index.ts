/**
 * ormq: a task queue in which every kind of task is a TypeORM entity.
 * This module is the one public entry point.
 */
import "reflect-metadata";

export {
  BaseTaskEntity,
  FINISHED_STATUSES,
  DELAY_MS,
  ormqEntities,
  epochMillis,
  WorkerEntity,
  type WorkerState,
  TaskEventEntity,
  type TaskEventKind,
  type TaskStatus,
  type TaskErrorRecord,
} from "../entities";
export { ormqMigrations } from "../migrations";
export { ormqSubscribers, TaskSubscriber } from "./subscriber";
export { processOne, processN, processForever } from "./worker/process";
export { enqueueMany, type EnqueueManyOptions } from "./enqueue";
export type { WorkerOptions } from "./worker/options";
export type { ProcessSummary } from "./worker/worker";
export type { TaskContext } from "./worker/context";
export type { TaskClass } from "./registry";
export type { Logger } from "./logger";
export {
  exponentialBackoff,
  fixedDelay,
  limitAttempts,
  retryOn,
  noRetry,
  type RetryPolicy,
  type ExponentialBackoffOptions,
  type PolicyClock,
} from "./retry/policies";
export {
  OrmqError,
  OrmqConfigurationError,
  InvalidOptionError,
  TaskDefinitionError,
  TaskValidationError,
  type TaskValidationIssue,
  SnoozeTask,
  CancelTask,
  TaskTimeoutError,
  TaskCancelledError,
  WorkerShutdownError,
  WorkerNeedsRestartError,
} from "./errors";
export { cancelTask, type CancelResult, type CancelOptions } from "./admin/cancel";
export { QUEUE_NAME } from "./validation";
export { ormqDataSourceOptions, DEFAULT_DATABASE } from "./config";
export { getStats, type QueueStats, type TaskCount } from "./admin/stats";
export { rescueExpiredTasks } from "./admin/rescue";
export { retryTask, retryFailed, type RetryTaskResult } from "./admin/retry";
export { prune, type PruneOptions, type PruneResult } from "./admin/prune";
export type { RescuedTask } from "./dialect";
