/**
 * `ormq/admin`: what an operator does to the tasks of a DataSource. List and read them, count
 * them, cancel, retry, delete and prune them, pause and limit queues and types, and manage
 * schedules. The CLI and the dashboard are built on these functions.
 */
export { cancelTask, type CancelResult, type CancelOptions } from "../tasks/cancel";
export { retryTask, retryFailed, type RetryTaskResult } from "./retry";
export { cancelWorkflow, type CancelWorkflowResult } from "./cancelWorkflow";
export { deleteTasks, type DeleteTasksResult } from "./deleteTasks";
export { prune, type PruneOptions, type PruneResult } from "../maintenance/prune";
export { rescueExpiredTasks } from "./rescue";
export type { RescuedTask } from "../dialect";
export {
  getStats,
  getReadiness,
  countUnfinished,
  listWorkers,
  countFinishedByMinute,
  type QueueStats,
  type TaskCount,
  type QueueReadiness,
  type WorkerInfoRow,
} from "./stats";
export {
  listTasks,
  listTaskPage,
  showTask,
  TASK_STATUSES,
  MAX_LIST_LIMIT,
  type TaskPage,
  type TaskListItem,
  type ListTasksOptions,
  type TaskDetails,
  type TaskEventItem,
  type StoredInstant,
} from "./list";
export type { TaskFilter, FieldCondition } from "./taskFilter";
export { pauseQueue, resumeQueue, pauseType, resumeType, setQueueLimits, listControls, type QueueLimits, type ControlRow } from "./queues";
export {
  createSchedule,
  pauseSchedule,
  resumeSchedule,
  deleteSchedule,
  listSchedules,
  type CreateScheduleOptions,
  type ScheduleInfo,
} from "./schedules";
// ormq's other tables, to query them as entities (a task's history, the live workers, schedules).
export { TaskEventEntity, type TaskEventKind, WorkerEntity, type WorkerState, ScheduleEntity, type ScheduleSource, FINISHED_STATUSES } from "../../entities";
