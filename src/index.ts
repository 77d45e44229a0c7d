/**
 * ormq: a task queue in which every kind of task is a TypeORM entity.
 * This module is the one public entry point.
 */
import "reflect-metadata";
import { registerTaskOperations } from "../entities/operations";
import { cancelTask } from "./admin/cancel";
import { installSqliteIntegerKey } from "./dialect/sqlite/integerKey";
import { taskSaveOptions } from "./enqueue/saveOptions";
import { waitForResult } from "./wait/waitForResult";

// What an import of ormq sets up, once: SQLite's 64-bit generated key, and the database
// operations entity methods call (entities import no layer above them).
installSqliteIntegerKey();
registerTaskOperations({ cancel: cancelTask, saveOptions: taskSaveOptions, waitForResult });

export {
  BaseTaskEntity,
  FINISHED_STATUSES,
  ormqEntities,
  WorkerEntity,
  type WorkerState,
  TaskEventEntity,
  type TaskEventKind,
  ControlEntity,
  MetaEntity,
  RateClaimEntity,
  ScheduleEntity,
  type ScheduleSource,
  SCHEMA_VERSION,
  type TaskStatus,
  type TaskErrorRecord,
} from "../entities";
export { ormqMigrations } from "../migrations";
export { ormqSubscribers, TaskSubscriber } from "./enqueue/subscriber";
export { processOne, processN, processForever } from "./worker/run";
export type { WorkerOptions, AttemptFinished, SettingSources } from "./worker/options";
export { WORKER_SETTINGS, type Setting } from "./worker/settings";
export { enqueueMany, type EnqueueManyOptions } from "./enqueue/enqueueMany";
export type { ProcessSummary } from "./worker/worker";
export { TaskLogger, TaskContextToken, type TaskContext } from "./worker/context";
export { createMetrics, type OrmqMetrics, type MetricsOptions } from "./metrics";
export { createLogger, LOG_LEVELS } from "./logger";
export type { TaskClass } from "./registry";
export type { UniqueOption, OnConflict } from "./flow/uniqueSpec";
export type { ConcurrencyLimitOption, RateLimitOption, ScheduleOption, CatchUp } from "../entities/unique";
export type { WaitOptions, WaitResult, TaskProgress } from "../entities/operations";
export { waitForResult, waitForResults, type WaitForResultOptions } from "./wait/waitForResult";
export { ormqFor, type OrmqClient } from "./client/client";
export type { OrmqEventMap, OrmqEventName, OrmqListener, TaskRef, AttemptRef, AttemptEnded, AttemptOutcome } from "./client/events";
export type { Middleware } from "./client/middleware";
export {
  createSchedule,
  pauseSchedule,
  resumeSchedule,
  deleteSchedule,
  listSchedules,
  type CreateScheduleOptions,
  type ScheduleInfo,
} from "./admin/schedules";
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
  WorkerShutdownError,
  WorkerNeedsRestartError,
  OutcomeWriteError,
  RetryPolicyError,
  RemoteTaskError,
  errorIs,
} from "./errors";
export { ERRORS_KEPT, MAX_DELAY_MS, MAX_ERRORS_BYTES, MAX_MESSAGE_CHARS, MAX_RESULT_BYTES, MAX_STACK_CHARS, MAX_TIMER_MS } from "./storable";
export { cancelTask, type CancelResult, type CancelOptions } from "./admin/cancel";
export { ormqDataSourceOptions, DEFAULT_DATABASE } from "./config";
export { getStats, getReadiness, countUnfinished, listWorkers, finishedByMinute, type QueueStats, type TaskCount, type QueueReadiness, type WorkerInfoRow } from "./admin/stats";
export {
  listTasks,
  listTaskPage,
  LIST_PAGE_SCAN,
  type TaskPage,
  showTask,
  TASK_STATUSES,
  MAX_LIST_LIMIT,
  type TaskListItem,
  type ListTasksOptions,
  type TaskDetails,
  type TaskEventItem,
  type StoredInstant,
} from "./admin/list";
export { rescueExpiredTasks } from "./admin/rescue";
export { retryTask, retryFailed, type RetryTaskResult } from "./admin/retry";
export { deleteTasks, type DeleteTasksResult } from "./admin/deleteTasks";
export { ormqDashboard, type DashboardOptions, type DashboardAuth } from "./dashboard";
export type { TaskFilter, FieldCondition } from "./admin/taskFilter";
export { pauseQueue, resumeQueue, pauseType, resumeType, setQueueLimits, listControls, type QueueLimits, type ControlRow } from "./admin/queues";
export { prune, type PruneOptions, type PruneResult } from "./admin/prune";
export type { RescuedTask } from "./dialect";
