/**
 * Dependencies between tasks (a DAG): a task saved with `dependsOn` is inserted `waiting`, and
 * becomes pending once every task it depends on has succeeded; one that fails for good, is
 * cancelled or is deleted settles it by its class's `onDependencyFailure`, and its dependents in
 * turn.
 *
 * When things happen:
 * - At enqueue, the edges are written when the enqueuing transaction commits (a subscriber's
 *   beforeTransactionCommit, so that tasks saved together may depend on each other), after the
 *   dependencies' rows were read with a share lock: a dependency cannot finish unseen meanwhile.
 *   A dependency that does not exist, or a cycle, is refused there, and nothing commits.
 * - When a task finishes, its worker settles its dependents right after the outcome is written
 *   (`settleDependents`): it marks their edges, then releases those left with no open edge, in a
 *   guarded statement that checks it (see settle() for why the last to finish always does).
 * - A crash between an outcome and that transaction leaves open edges to a finished task: the
 *   maintenance sweep settles them (`sweepDependencies`).
 *
 * Why not in the outcome's own transaction: a worker writes outcomes in batched statements that
 * commit on their own (one per batch, not one transaction per task), and a release must read
 * what other completions committed after taking its locks, which one statement cannot. The
 * release follows the outcome within milliseconds; nothing runs before its dependencies' outcomes
 * are committed.
 */
import type { EntityManager } from "typeorm";
import { BaseTaskEntity, WAITS_FOR } from "../../entities/BaseTaskEntity";
import type { TaskStatus } from "../../entities/status";
import type { OrmqClient } from "../client/client";
import { announcementOf } from "../client/announcements";
import {
  anyOpenDependents,
  brokenEdgesFrom,
  brokenEdgesTo,
  DEPENDENCY_FAILED,
  reopenEdges,
  waitAgain,
  insertDependencies,
  markEdgesTo,
  openDependents,
  openEdges,
  releaseReady,
  settleWaiting,
  staleOpenDependencies,
  strandedWaiting,
  taskStatuses,
  waitingTypes,
  type DependencyRow,
} from "../dialect/dependencyStatements";
import { DependencyError } from "../errors";
import { checkTaskId } from "../validation";

/** At most this many dependencies per task (a fan-in of ten thousand fits many times over). */
export const MAX_DEPENDENCIES = 100_000;

/** Dependents settled per round when a failure spreads down a workflow. */
const SETTLE_BATCH = 1_000;

/** How a task a workflow depends on ended (deleted: its row is gone). */
export type Finished = "succeeded" | "failed" | "cancelled" | "deleted";

/**
 * Checks a task's `dependsOn` at insert and says whether it has any (then it is inserted
 * `waiting`). Entries are saved tasks, their ids, or tasks saved in the same transaction.
 */
export function hasDependencies(task: { dependsOn?: unknown }, name: string): boolean {
  const list = task.dependsOn;
  if (list === undefined || list === null) return false;
  if (!Array.isArray(list)) throw invalid(name, "dependsOn must be an array of tasks or task ids");
  if (list.length > MAX_DEPENDENCIES) throw invalid(name, `dependsOn has ${list.length} entries, more than ${MAX_DEPENDENCIES}`);
  list.forEach((entry, i) => {
    if (entry instanceof BaseTaskEntity) return;
    try {
      checkTaskId(entry, `dependsOn[${i}]`);
    } catch (err) {
      throw invalid(name, `${(err as Error).message} (or a task)`);
    }
  });
  return list.length > 0;
}

/**
 * Writes the edges of the tasks inserted with dependencies in `runner`'s transaction, before it
 * commits: refuses missing dependencies and cycles, marks the edges of dependencies already
 * finished, and releases or settles the tasks those leave with nothing to wait for.
 */
export async function writeDependencies(client: OrmqClient, m: EntityManager, tasks: readonly BaseTaskEntity[]): Promise<void> {
  const written = tasks.filter((t) => !t.deduplicated && t.id !== undefined && t.id !== null);
  if (written.length === 0) return;
  client.dependenciesSeen = true;
  const edges: { task: BaseTaskEntity; on: string }[] = [];
  for (const task of written) {
    const seen = new Set<string>();
    (task.dependsOn ?? []).forEach((entry, i) => {
      const on = entry instanceof BaseTaskEntity ? entry.id : checkTaskId(entry, `dependsOn[${i}]`);
      if (on === undefined || on === null) throw invalid(task.constructor.name, `dependsOn[${i}] (${entry.constructor.name}) is not saved: save it first, or in the same transaction`);
      const id = String(on);
      if (!seen.has(id)) edges.push({ task, on: id });
      seen.add(id);
    });
  }
  refuseCycles(written, edges);
  const statuses = await taskStatuses(m, [...new Set(edges.map((e) => e.on))], true);
  for (const edge of edges) {
    if (!statuses.has(edge.on)) throw invalid(edge.task.constructor.name, `dependsOn: task ${edge.on} does not exist`);
  }
  // Tasks of this same transaction are read as inserted (waiting, or pending): open edges.
  const rows: DependencyRow[] = edges.map((e) => ({ taskId: String(e.task.id), dependsOn: e.on, state: "open", kind: e.task[WAITS_FOR] ?? "success" }));
  await insertDependencies(m, rows);
  const now = new Date(await client.clock.now(m.queryRunner));
  // Those already finished settle their new dependents now, as if they had just finished.
  const finished = new Map<string, Finished>();
  for (const [id, status] of statuses) if (isFinished(status)) finished.set(id, status);
  if (finished.size > 0) await settle(client, m, finished, now);
  // And a task whose every dependency had succeeded is ready at once.
  await releaseReady(m, written.map((t) => String(t.id)), now);
}

/**
 * After outcomes were written: settles the dependents of these finished tasks, each statement
 * committing on its own (see settle). Cheap when nothing depends on them (one read). Returns the
 * ids it released to the queue.
 */
export async function settleDependents(client: OrmqClient, finished: ReadonlyMap<string, Finished>): Promise<string[]> {
  if (finished.size === 0) return [];
  const ds = client.dataSource;
  if (!(await anyOpenDependents(ds, [...finished.keys()]))) return [];
  // Each statement on its own, not in a transaction: see settle().
  return settle(client, ds.manager, finished, null);
}

/**
 * The sweep of what a crash left unsettled: open edges to tasks that finished (or were deleted)
 * without their dependents being settled (a crash between an outcome and its settle), then
 * waiting tasks with no open edge left (a crash between the mark of their last edge and their
 * release; the chaos test found one such task waiting for ever). Returns how many of both it
 * settled.
 */
export async function sweepDependencies(client: OrmqClient, limit = SETTLE_BATCH): Promise<number> {
  const stale = await staleOpenDependencies(client.dataSource.manager, limit);
  const finished = new Map<string, Finished>();
  for (const s of stale) finished.set(s.dependsOn, s.status === null ? "deleted" : (s.status as Finished));
  if (finished.size > 0) await settleDependents(client, finished);
  return finished.size + (await settleStranded(client, limit));
}

/**
 * Settles the open dependents of `finished` on `m`, and in turn those a failure settled, round by
 * round. Returns the ids released to the queue.
 *
 * Without row locks, so that no row is hot (a batch's callback that a hundred thousand tasks lead
 * to is never locked by their completions): the edges are marked first, and a dependent is
 * released by one guarded UPDATE that checks in the same statement that none of its edges is open
 * (`releaseReady`). On the worker's path each statement commits on its own, so that check runs
 * after this worker's marks are committed and sees every mark committed before it: of two
 * dependencies finishing at once, whichever checks last sees both marks, and releases the
 * dependent; the other's release finds it no longer waiting. At enqueue it all runs in the
 * enqueuing transaction, over that transaction's own new tasks.
 */
async function settle(client: OrmqClient, m: EntityManager, first: ReadonlyMap<string, Finished>, at: Date | null): Promise<string[]> {
  const now = at ?? new Date(await client.clock.now(m.queryRunner));
  const released: string[] = [];
  let round = first;
  while (round.size > 0) {
    const next = new Map<string, Finished>();
    const ids = [...round.keys()];
    const dependents = await openDependents(m, ids);
    if (dependents.length === 0) break;
    const failed = ids.filter((id) => round.get(id) !== "succeeded");
    // The open edges to failed dependencies, read before they are marked.
    const edges = failed.length > 0 ? await openEdges(m, dependents, failed) : [];
    // Every open edge to these records what became of its dependency.
    for (const outcome of ["succeeded", "failed", "cancelled", "deleted"] as const) {
      await markEdgesTo(m, ids.filter((id) => round.get(id) === outcome), outcome);
    }
    if (failed.length > 0) {
      // A dependent that waits for a dependency's success is settled by its failure (failed or
      // cancelled, without running, naming the dependency), unless its class runs anyway; one
      // that waits only for its end (a batch's callback) goes on waiting for the others.
      const policyOf = new Map((await waitingTypes(m, [...new Set(edges.map((e) => e.task))])).map((t) => [t.id, dependencyPolicy(client, t.type)]));
      const settleAs = new Map<string, { status: "failed" | "cancelled"; cause: string }>();
      for (const e of edges) {
        const policy = policyOf.get(e.task);
        if (policy === undefined || policy === "run" || e.kind === "finish" || settleAs.has(e.task)) continue;
        settleAs.set(e.task, { status: policy === "cancel" ? "cancelled" : "failed", cause: e.on });
      }
      const groups = new Map<string, string[]>();
      for (const [task, { status, cause }] of settleAs) {
        const key = `${status} ${cause}`;
        const group = groups.get(key);
        if (group) group.push(task);
        else groups.set(key, [task]);
      }
      for (const [key, tasks] of groups) {
        const [status, cause] = key.split(" ") as ["failed" | "cancelled", string];
        const lastError = dependencyFailed(cause, round.get(cause) as Exclude<Finished, "succeeded">);
        await settleWaiting(m, tasks, status, lastError, now);
        for (const id of tasks) next.set(id, status);
      }
    }
    const ready = await releaseReady(m, dependents.filter((id) => !next.has(id)), now);
    if (ready.length > 0) {
      released.push(...ready.map((t) => t.id));
      const announcements = ready.map((t) => announcementOf(t.queue, t.type));
      // In the enqueue's transaction: at its commit; on the worker's path, now.
      if (m.queryRunner?.isTransactionActive) client.announcements.inserted(m.queryRunner, announcements);
      else client.announcements.released(announcements);
    }
    round = next;
  }
  return released;
}

/**
 * A failed task was retried (retryTask, retryFailed): what its failure settled waits for it again,
 * in the retry's transaction. The tasks its failure failed or cancelled without running, and
 * theirs in turn, wait again, unless another of their dependencies failed too (then they stay as
 * they are: that one's retry brings them back); their edges, and those of dependents still
 * waiting (a batch's callback, a class that runs anyway), are open again. Returns the tasks that
 * wait again.
 */
export async function reopenDependents(m: EntityManager, retried: string, now: Date): Promise<string[]> {
  // Everything below the retried task that a failure settled, round by round.
  const broken: Awaited<ReturnType<typeof brokenEdgesTo>> = [];
  const below = new Set<string>();
  let frontier = [retried];
  while (frontier.length > 0) {
    const edges = await brokenEdgesTo(m, frontier);
    broken.push(...edges);
    frontier = [];
    for (const e of edges) {
      if (!e.settledByDependency || e.task === retried || below.has(e.task)) continue;
      below.add(e.task);
      frontier.push(e.task);
    }
  }
  // Those with a failed dependency outside it stay settled, and what depends on them in turn.
  const inside = (id: string) => id === retried || below.has(id);
  const outward = await brokenEdgesFrom(m, [...below]);
  for (let changed = true; changed; ) {
    changed = false;
    for (const e of outward) {
      if (below.has(e.task) && !inside(e.on)) {
        below.delete(e.task);
        changed = true;
      }
    }
  }
  const again = new Set(await waitAgain(m, [...below], now));
  const reopen = new Map<string, string[]>();
  for (const e of broken) {
    if (!(e.on === retried || again.has(e.on)) || !(again.has(e.task) || e.status === "waiting")) continue;
    const tasks = reopen.get(e.on);
    if (tasks) tasks.push(e.task);
    else reopen.set(e.on, [e.task]);
  }
  for (const [on, tasks] of reopen) await reopenEdges(m, tasks, on);
  return [...again];
}

/** The last error of a task settled by a dependency's failure. */
function dependencyFailed(cause: string, what: Exclude<Finished, "succeeded">): string {
  return `${DEPENDENCY_FAILED}task ${cause} it depends on ${what === "deleted" ? "no longer exists" : what === "failed" ? "failed" : "was cancelled"}`;
}

/**
 * The sweep's second part: waiting tasks with nothing open to wait for (a crash came between the
 * mark of their last edge and their release). Each is settled as its live settle would have: by
 * its class's policy when a dependency it waits to succeed did not, else released. Returns how many.
 */
async function settleStranded(client: OrmqClient, limit: number): Promise<number> {
  const m = client.dataSource.manager;
  const stranded = await strandedWaiting(m, limit);
  if (stranded.length === 0) return 0;
  const now = new Date(await client.clock.now());
  const cause = new Map<string, { on: string; state: Exclude<Finished, "succeeded"> }>();
  for (const e of await brokenEdgesFrom(m, stranded)) if (!cause.has(e.task)) cause.set(e.task, { on: e.on, state: e.state });
  const types = new Map((await waitingTypes(m, [...cause.keys()])).map((t) => [t.id, t.type]));
  const settledNow = new Map<string, Finished>();
  for (const [task, { on, state }] of cause) {
    const policy = dependencyPolicy(client, types.get(task) ?? "");
    if (policy === "run" || !types.has(task)) continue;
    const status = policy === "cancel" ? "cancelled" : "failed";
    if ((await settleWaiting(m, [task], status, dependencyFailed(on, state), now)) === 1) settledNow.set(task, status);
  }
  const ready = await releaseReady(m, stranded.filter((id) => !settledNow.has(id)), now);
  if (ready.length > 0) client.announcements.released(ready.map((t) => announcementOf(t.queue, t.type)));
  // What those failures settle in turn.
  if (settledNow.size > 0) await settleDependents(client, settledNow);
  return stranded.length;
}

/** A type's `onDependencyFailure` ("fail" for a type this process does not know). */
function dependencyPolicy(client: OrmqClient, type: string): "fail" | "cancel" | "run" {
  const policy = (client.registry.byKey.get(type)?.cls as { onDependencyFailure?: unknown } | undefined)?.onDependencyFailure;
  return policy === "cancel" || policy === "run" ? policy : "fail";
}

/** A cycle among the tasks of one transaction (an older task cannot depend on a new one). */
function refuseCycles(tasks: readonly BaseTaskEntity[], edges: readonly { task: BaseTaskEntity; on: string }[]): void {
  const ids = new Set(tasks.map((t) => String(t.id)));
  const next = new Map<string, string[]>();
  for (const e of edges) {
    if (!ids.has(e.on)) continue;
    const from = String(e.task.id);
    next.set(from, [...(next.get(from) ?? []), e.on]);
  }
  const state = new Map<string, "visiting" | "done">();
  const visit = (id: string, path: string[]): void => {
    if (state.get(id) === "done") return;
    if (state.get(id) === "visiting") {
      const cycle = [...path.slice(path.indexOf(id)), id];
      throw new DependencyError(`dependsOn makes a cycle: task ${cycle.join(" → task ")}`);
    }
    state.set(id, "visiting");
    for (const on of next.get(id) ?? []) visit(on, [...path, id]);
    state.set(id, "done");
  };
  for (const id of next.keys()) visit(id, []);
}

function isFinished(status: TaskStatus): status is "succeeded" | "failed" | "cancelled" {
  return status === "succeeded" || status === "failed" || status === "cancelled";
}

function invalid(name: string, message: string): DependencyError {
  return new DependencyError(`${name}: ${message}`);
}
