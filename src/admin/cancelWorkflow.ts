/**
 * Cancelling a whole workflow: a task and everything below it, its children (`parent_id`) and
 * its dependents (edges), all the way down.
 */
import type { DataSource } from "typeorm";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { ormqFor } from "../client/client";
import { resolveDataSource } from "../dataSource";
import { cancelPendingMany, readTaskState, recordEvents, requestCancelMany } from "../dialect/taskWrites";
import { MAX_MESSAGE_CHARS, storableText } from "../storable";
import { checkTaskId } from "../validation";
import { settleDependents } from "../workflow/dependencies";
import type { CancelOptions } from "../tasks/cancel";
import { tasksBelow } from "./workflow";

export interface CancelWorkflowResult {
  /** The task given. */
  id: string;
  /** False when there is no task with that id (nothing was done). */
  found: boolean;
  /** How many tasks the workflow holds from that task down, that task included. */
  tasks: number;
  /** Pending or waiting tasks now cancelled. */
  cancelled: number;
  /** Running tasks whose workers were asked to stop them (they end cancelled unless they finish first). */
  cancelRequested: number;
}

/**
 * Cancels a task and everything below it in its workflow: pending and waiting tasks become
 * `cancelled` (all of them before any dependent is settled, so that a failure policy does not
 * turn one into `failed` first), running ones get a cancel request as with cancelTask, finished
 * ones are left as they are. Children a running task gives in an attempt that commits after this
 * are not seen: cancel again, or let the cancel request stop that attempt first.
 */
export async function cancelWorkflow(id: string | number, options: CancelOptions = {}): Promise<CancelWorkflowResult> {
  const dataSource: DataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  const taskId = checkTaskId(id, "cancelWorkflow(id)");
  const client = ormqFor(dataSource);
  const lastError = `cancelled: ${storableText(options.reason ?? "its workflow was cancelled", MAX_MESSAGE_CHARS)}`;
  const m = dataSource.manager;
  if (!(await readTaskState(m, taskId))) return { id: taskId, found: false, tasks: 0, cancelled: 0, cancelRequested: 0 };

  // Everything below, breadth first (a DAG: a task reached twice is taken once), however many.
  const ids = [taskId, ...(await tasksBelow(m, taskId, Infinity)).ids];
  const now = new Date(await client.clock.now());
  const cancelled = await dataSource.transaction(async (tx) => {
    const done = await cancelPendingMany(tx, ids, lastError, now);
    const events = done.filter((t) => client.registry.recordsHistory(t.type)).map((t) => ({ taskId: t.id, kind: "cancelled" as const, at: now, error: lastError }));
    if (events.length > 0) await recordEvents(tx, events);
    return done;
  });
  // Their edges record the cancel, as for any cancelled task (their dependents were cancelled above).
  await settleDependents(client, new Map(cancelled.map((t) => [t.id, "cancelled" as const])));
  const cancelRequested = await requestCancelMany(m, ids, lastError, now);
  return { id: taskId, found: true, tasks: ids.length, cancelled: cancelled.length, cancelRequested };
}
