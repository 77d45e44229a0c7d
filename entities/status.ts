/**
 * The life of a task. A task waiting to retry is `pending` with a later `runAt`; a task waiting
 * for its dependencies (`dependsOn`) is `waiting`: never claimed, not ready.
 */
export type TaskStatus = "waiting" | "pending" | "running" | "succeeded" | "failed" | "cancelled";

/** The statuses from which a task never moves again on its own. */
export const FINISHED_STATUSES: readonly TaskStatus[] = ["succeeded", "failed", "cancelled"];

/** Every task status, in lifecycle order. */
export const TASK_STATUSES: readonly TaskStatus[] = ["waiting", "pending", "running", "succeeded", "failed", "cancelled"];
