/**
 * A task's place in its workflow, for `showTask`, `ormq show` and the dashboard: its parent,
 * children, dependencies and dependents, and what stands below it; and everything below a task,
 * which cancelWorkflow cancels.
 */
import type { EntityManager } from "typeorm";
import type { TaskStatus } from "../../entities/status";
import { childrenOf, directlyBelow, edgesOf, statusCounts, type RelatedTaskRow } from "../dialect/dependencyStatements";
import { readTaskState } from "../dialect/taskWrites";

/** Related tasks listed per kind; the totals are exact. */
export const RELATED_LISTED = 50;
/** At most this many tasks are walked below a task (a larger workflow's counts say `complete: false`). */
export const MAX_BELOW = 200_000;

/** A task seen from another in its workflow (see RelatedTaskRow). */
export type RelatedTask = RelatedTaskRow;

export interface WorkflowView {
  parent: RelatedTask | null;
  children: { tasks: RelatedTask[]; total: number };
  dependencies: { tasks: RelatedTask[]; total: number };
  dependents: { tasks: RelatedTask[]; total: number };
  /** Every task below this one (children and dependents, all the way down), by status. */
  below: { total: number; byStatus: Partial<Record<TaskStatus, number>>; complete: boolean };
}

/** Every task below `id` (children and dependents, all the way down), at most `max`; `complete` false when there were more. */
export async function tasksBelow(m: EntityManager, id: string, max = MAX_BELOW): Promise<{ ids: string[]; complete: boolean }> {
  const seen = new Set<string>([id]);
  const below: string[] = [];
  for (let frontier = [id]; frontier.length > 0; ) {
    const next = (await directlyBelow(m, frontier)).filter((t) => !seen.has(t));
    for (const t of next) {
      if (below.length >= max) return { ids: below, complete: false };
      seen.add(t);
      below.push(t);
    }
    frontier = next;
  }
  return { ids: below, complete: true };
}

/** Task `id`'s workflow, or null when it has no parent, children, dependencies nor dependents. */
export async function workflowOf(m: EntityManager, id: string, parentId: string | null): Promise<WorkflowView | null> {
  const [children, dependencies, dependents] = [await childrenOf(m, id, RELATED_LISTED), await edgesOf(m, id, "on", RELATED_LISTED), await edgesOf(m, id, "of", RELATED_LISTED)];
  if (parentId === null && children.total === 0 && dependencies.total === 0 && dependents.total === 0) return null;
  let parent: RelatedTask | null = null;
  if (parentId !== null) {
    const row = await readTaskState(m, parentId);
    parent = { id: parentId, type: row?.type ?? null, status: row?.status ?? null };
  }
  const { ids, complete } = await tasksBelow(m, id);
  const byStatus: Partial<Record<TaskStatus, number>> = {};
  for (const [status, n] of await statusCounts(m, ids)) byStatus[status] = n;
  return { parent, children, dependencies, dependents, below: { total: ids.length, byStatus, complete } };
}
