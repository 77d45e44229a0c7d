/**
 * `ormq`: what a user defines, enqueues, runs and waits with, its errors and its retry policies.
 * Importing it changes nothing until it is used: ormq's TypeORM set-up (the task operations
 * entity methods call, SQLite's 64-bit key) is installed when a DataSource with ormq's
 * subscriber is built. Operators' functions are in `ormq/admin`, the dashboard in
 * `ormq/dashboard`, Prometheus metrics in `ormq/metrics` and test helpers in `ormq/testing`.
 */
import "reflect-metadata";

// Defining tasks and setting up the DataSource.
export { BaseTaskEntity, ormqEntities, type TaskStatus, type TaskErrorRecord } from "../entities";
export { ormqMigrations } from "../migrations";
export { ormqSubscribers } from "./enqueue/subscriber";
export { ormqDataSourceOptions } from "./config";
export type { TaskClass } from "./registry";
export type { UniqueOption, OnConflict } from "./flow/uniqueSpec";
export type { ConcurrencyLimitOption, RateLimitOption, FairnessOption, ScheduleOption, CatchUp } from "../entities/classOptions";

// Enqueueing, running, waiting.
export { enqueueMany, type EnqueueManyOptions } from "./enqueue/enqueueMany";
export { enqueueBatch, type EnqueueBatchOptions, type EnqueuedBatch } from "./workflow/batch";
export { processOne, processN, processForever } from "./worker/run";
export type { WorkerOptions, AttemptFinished } from "./worker/options";
export type { ProcessSummary } from "./worker/worker";
export { TaskLogger, TaskContextToken, type TaskContext, type TaskInstance, type DependencyCounts } from "./worker/context";
export type { Logger } from "./logger";
export { waitForResult, waitForResults, type WaitForResultOptions } from "./tasks/waitForResult";
export type { WaitOptions, WaitResult, TaskProgress } from "../entities/operations";

// The client of a DataSource: events and middleware.
export { ormqFor, type OrmqClient } from "./client/client";
export type { OrmqEventMap, OrmqEventName, OrmqListener, TaskRef, AttemptRef, AttemptEnded, AttemptOutcome } from "./client/events";
export type { Middleware } from "./client/middleware";

// Retry policies and errors.
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
  UniqueTaskError,
  SnoozeTask,
  CancelTask,
  TaskTimeoutError,
  TaskProcessExitError,
  TaskMemoryLimitError,
  HookTimeoutError,
  TaskCancelledError,
  TaskFailedError,
  WaitTimeoutError,
  WorkerLostError,
  WorkerShutdownError,
  AttemptLostError,
  AttemptCommitError,
  DependencyError,
  WorkerNeedsRestartError,
  RetryPolicyError,
  RemoteTaskError,
  errorIs,
} from "./errors";
