/**
 * The statements of workflows' dependencies (`ormq_task_dependencies`, and the `waiting` tasks
 * they hold back), written once with TypeORM's query builder for every database, on the caller's
 * EntityManager (a transaction: see src/workflow/dependencies.ts for the order they run in and
 * why). Each change of a task's status is guarded by `status = 'waiting'` and its row count read.
 */
import type { DataSource, EntityManager } from "typeorm";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import type { TaskStatus } from "../../entities/status";
import { TaskDependencyEntity, type DependencyKind, type DependencyState } from "../../entities/TaskDependencyEntity";
import { contractOf, tablesOf } from "./index";

/** Ids per statement: far below every database's parameter limit. */
const IDS_PER_STATEMENT = 1_000;

/** `ids` in chunks of IDS_PER_STATEMENT. */
function chunks(ids: readonly string[]): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < ids.length; i += IDS_PER_STATEMENT) out.push(ids.slice(i, i + IDS_PER_STATEMENT));
  return out;
}

/** One edge, as written. */
export interface DependencyRow {
  taskId: string;
  dependsOn: string;
  state: DependencyState;
  kind: DependencyKind;
}

/**
 * The status of each of these tasks that exists. `lock`: read with FOR SHARE where rows lock, so
 * that none of them can finish unseen before the caller's transaction commits (its completion
 * waits for the lock, and its release then sees the edges written here).
 */
export async function taskStatuses(m: EntityManager, ids: readonly string[], lock: boolean): Promise<Map<string, TaskStatus>> {
  const statuses = new Map<string, TaskStatus>();
  const locks = lock && contractOf(m.connection).sql.rowLocks;
  for (const part of chunks(ids)) {
    const query = m.getRepository(BaseTaskEntity).createQueryBuilder("t").select(["t.id AS id", "t.status AS status"]).where("t.id IN (:...ids)", { ids: part });
    if (locks) query.setLock("pessimistic_read");
    for (const row of await query.getRawMany<{ id: string | number; status: TaskStatus }>()) statuses.set(String(row.id), row.status);
  }
  return statuses;
}

/** Writes edges. */
export async function insertDependencies(m: EntityManager, rows: readonly DependencyRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += IDS_PER_STATEMENT / 2) {
    await m.createQueryBuilder().insert().into(TaskDependencyEntity).values(rows.slice(i, i + IDS_PER_STATEMENT / 2)).updateEntity(false).execute();
  }
}

/**
 * Whether any of `finished` has an open dependent: the one read every batch of outcomes pays,
 * so written by hand rather than through the query builder (whose statement building cost a
 * PostgreSQL drain about a tenth of its worker CPU per task when it ran here), and nearly always
 * answered no at once from the `depends_on` index.
 */
export async function anyOpenDependents(dataSource: DataSource, finished: readonly string[]): Promise<boolean> {
  const sql = contractOf(dataSource).sql;
  const table = tablesOf(dataSource).dependencies;
  for (const part of chunks(finished)) {
    const values: unknown[] = [];
    const where = sql.parts(values).inIds(sql.escape("depends_on"), part);
    const rows = await dataSource.query<unknown[]>(`SELECT 1 AS found FROM ${table} WHERE ${where} AND ${sql.escape("state")} = 'open' LIMIT 1`, values);
    if (rows.length > 0) return true;
  }
  return false;
}

/** Whether the database holds any edge at all (a database that has never run a workflow holds none). */
export async function anyDependencies(dataSource: DataSource): Promise<boolean> {
  const rows = await dataSource.query<unknown[]>(`SELECT 1 AS found FROM ${tablesOf(dataSource).dependencies} LIMIT 1`);
  return rows.length > 0;
}

/** The tasks with an open edge to one of `finished`. */
export async function openDependents(m: EntityManager, finished: readonly string[]): Promise<string[]> {
  const sql = contractOf(m.connection).sql;
  const table = tablesOf(m.connection).dependencies;
  const found = new Set<string>();
  for (const part of chunks(finished)) {
    const values: unknown[] = [];
    const where = sql.parts(values).inIds(sql.escape("depends_on"), part);
    const rows = await m.query<{ task_id: string | number }[]>(`SELECT DISTINCT ${sql.escape("task_id")} AS task_id FROM ${table} WHERE ${where} AND ${sql.escape("state")} = 'open'`, values);
    for (const row of rows) found.add(String(row.task_id));
  }
  return [...found];
}

/**
 * Every open edge to one of `dependencies` becomes `state`. By hand, with the ids as one array
 * where the database takes one: it runs for every batch of outcomes of a workflow (see
 * anyOpenDependents), and is served by the `(depends_on, state)` index. With an index on
 * `depends_on` alone, PostgreSQL chose the `(task_id, state)` index and read every open edge of
 * a fan-in's task per statement; marking 10,000 edges cost 570 ms of a fan-in's drain against
 * 400 ms now (workflows bench).
 */
export async function markEdgesTo(m: EntityManager, dependencies: readonly string[], state: DependencyState): Promise<void> {
  const sql = contractOf(m.connection).sql;
  const table = tablesOf(m.connection).dependencies;
  for (const part of chunks(dependencies)) {
    const values: unknown[] = [];
    const parts = sql.parts(values);
    const set = parts.param(state, "text"); // bound in text order: the SET first
    const where = parts.inIds(sql.escape("depends_on"), part);
    await m.query(`UPDATE ${table} SET ${sql.escape("state")} = ${set} WHERE ${where} AND ${sql.escape("state")} = 'open'`, values);
  }
}

/** Of these tasks, the waiting ones, with their type. */
export async function waitingTypes(m: EntityManager, ids: readonly string[]): Promise<{ id: string; type: string }[]> {
  const out: { id: string; type: string }[] = [];
  for (const part of chunks(ids)) {
    const rows = await m
      .getRepository(BaseTaskEntity)
      .createQueryBuilder("t")
      .select(["t.id AS id", "t.type AS type"])
      .where("t.id IN (:...ids) AND t.status = 'waiting'", { ids: part })
      .getRawMany<{ id: string | number; type: string }>();
    for (const row of rows) out.push({ id: String(row.id), type: row.type });
  }
  return out;
}

/**
 * Of these tasks, the waiting ones with no open edge become pending, by one guarded UPDATE that
 * checks both in the same statement (served by the `(task_id, state)` index). Returns those it
 * released (with their queue and type, for the wake-up): read back among the tasks now pending,
 * so a task another worker released at the same moment may be among them, which only wakes a
 * worker once more.
 */
export async function releaseReady(m: EntityManager, ids: readonly string[], now: Date): Promise<{ id: string; queue: string; type: string }[]> {
  const tables = tablesOf(m.connection);
  const out: { id: string; queue: string; type: string }[] = [];
  for (const part of chunks(ids)) {
    const result = await m
      .createQueryBuilder()
      .update(BaseTaskEntity)
      .set({ status: "pending", updatedAt: now })
      .where(`id IN (:...ids) AND status = 'waiting' AND NOT EXISTS (SELECT 1 FROM ${tables.dependencies} d WHERE d.task_id = ${tables.tasks}.id AND d.state = 'open')`, { ids: part })
      .updateEntity(false)
      .execute();
    if (!result.affected) continue;
    const rows = await m
      .getRepository(BaseTaskEntity)
      .createQueryBuilder("t")
      .select(["t.id AS id", "t.queue AS queue", "t.type AS type"])
      .where("t.id IN (:...ids) AND t.status = 'pending'", { ids: part })
      .getRawMany<{ id: string | number; queue: string; type: string }>();
    out.push(...rows.map((r) => ({ id: String(r.id), queue: r.queue, type: r.type })));
  }
  return out;
}

/** Waiting tasks end `status` (failed or cancelled) without running, `lastError` saying why. */
export async function settleWaiting(m: EntityManager, ids: readonly string[], status: "failed" | "cancelled", lastError: string, now: Date): Promise<number> {
  let settled = 0;
  for (const part of chunks(ids)) {
    const result = await m
      .createQueryBuilder()
      .update(BaseTaskEntity)
      .set({ status, lastError, finishedAt: now, updatedAt: now })
      .where("id IN (:...ids) AND status = 'waiting'", { ids: part })
      .updateEntity(false)
      .execute();
    settled += result.affected ?? 0;
  }
  return settled;
}

/**
 * Open edges whose dependency has finished, or no longer exists, oldest dependents first, at most
 * `limit`: what a crash between a completion and its release left behind (the sweep).
 */
export async function staleOpenDependencies(m: EntityManager, limit: number): Promise<{ dependsOn: string; status: TaskStatus | null }[]> {
  const rows = await m
    .getRepository(TaskDependencyEntity)
    .createQueryBuilder("d")
    .leftJoin(BaseTaskEntity, "t", "t.id = d.depends_on")
    .select(["d.depends_on AS depends_on", "t.status AS status"])
    .where("d.state = 'open' AND (t.id IS NULL OR t.status IN ('succeeded', 'failed', 'cancelled'))")
    .orderBy("d.task_id")
    .limit(limit)
    .getRawMany<{ depends_on: string | number; status: TaskStatus | null }>();
  return rows.map((r) => ({ dependsOn: String(r.depends_on), status: r.status ?? null }));
}

/** How many of a task's dependencies stand in each state (a batch's counts). */
export async function dependencyCounts(m: EntityManager, taskId: string): Promise<Record<DependencyState, number>> {
  const counts: Record<DependencyState, number> = { open: 0, succeeded: 0, failed: 0, cancelled: 0, deleted: 0 };
  const rows = await m
    .getRepository(TaskDependencyEntity)
    .createQueryBuilder("d")
    .select(["d.state AS state", "COUNT(*) AS n"])
    .where("d.task_id = :taskId", { taskId })
    .groupBy("d.state")
    .getRawMany<{ state: DependencyState; n: string | number }>();
  for (const row of rows) if (row.state in counts) counts[row.state] = Number(row.n);
  return counts;
}

/** The tasks `taskId` depends on, each of its own class, in id order. */
export async function dependenciesOf(m: EntityManager, taskId: string): Promise<BaseTaskEntity[]> {
  const edges = await m.getRepository(TaskDependencyEntity).find({ where: { taskId }, order: { dependsOn: "ASC" } });
  if (edges.length === 0) return [];
  const found: BaseTaskEntity[] = [];
  for (const part of chunks(edges.map((e) => e.dependsOn))) {
    found.push(...(await m.getRepository(BaseTaskEntity).createQueryBuilder("t").where("t.id IN (:...ids)", { ids: part }).orderBy("t.id").getMany()));
  }
  return found;
}

/** Which of `tasks` have an open edge to one of `on`, edge by edge. */
export async function openEdges(m: EntityManager, tasks: readonly string[], on: readonly string[]): Promise<{ task: string; on: string; kind: DependencyKind }[]> {
  const out: { task: string; on: string; kind: DependencyKind }[] = [];
  for (const part of chunks(on)) {
    for (const of of chunks(tasks)) {
      const rows = await m
        .getRepository(TaskDependencyEntity)
        .createQueryBuilder("d")
        .select(["d.task_id AS task_id", "d.depends_on AS depends_on", "d.kind AS kind"])
        .where("d.task_id IN (:...of) AND d.depends_on IN (:...on) AND d.state = 'open'", { of, on: part })
        .getRawMany<{ task_id: string | number; depends_on: string | number; kind: DependencyKind }>();
      out.push(...rows.map((r) => ({ task: String(r.task_id), on: String(r.depends_on), kind: r.kind })));
    }
  }
  return out;
}

/** The edges to `dependencies` that recorded a failure (failed, cancelled or deleted), with the dependent's status. */
export async function brokenEdgesTo(m: EntityManager, dependencies: readonly string[]): Promise<{ task: string; on: string; kind: DependencyKind; status: TaskStatus; settledByDependency: boolean }[]> {
  const out: { task: string; on: string; kind: DependencyKind; status: TaskStatus; settledByDependency: boolean }[] = [];
  for (const part of chunks(dependencies)) {
    const rows = await m
      .getRepository(TaskDependencyEntity)
      .createQueryBuilder("d")
      .innerJoin(BaseTaskEntity, "t", "t.id = d.task_id")
      .select(["d.task_id AS task_id", "d.depends_on AS depends_on", "d.kind AS kind", "t.status AS status", "t.attempts AS attempts", "t.last_error AS last_error"])
      .where("d.depends_on IN (:...on) AND d.state IN ('failed', 'cancelled', 'deleted')", { on: part })
      .getRawMany<{ task_id: string | number; depends_on: string | number; kind: DependencyKind; status: TaskStatus; attempts: string | number; last_error: string | null }>();
    out.push(
      ...rows.map((r) => ({
        task: String(r.task_id),
        on: String(r.depends_on),
        kind: r.kind,
        status: r.status,
        // Settled without running, by a dependency's failure (see settle() in src/workflow).
        settledByDependency: Number(r.attempts) === 0 && (r.status === "failed" || r.status === "cancelled") && (r.last_error ?? "").startsWith(DEPENDENCY_FAILED),
      })),
    );
  }
  return out;
}

/** The start of the last error of a task settled by a dependency's failure. */
export const DEPENDENCY_FAILED = "DependencyFailedError: ";

/** The edges from `tasks` that wait for a success (kind 'success') and recorded a failure, with what it was. */
export async function brokenEdgesFrom(m: EntityManager, tasks: readonly string[]): Promise<{ task: string; on: string; state: Exclude<DependencyState, "open" | "succeeded"> }[]> {
  const out: { task: string; on: string; state: Exclude<DependencyState, "open" | "succeeded"> }[] = [];
  for (const part of chunks(tasks)) {
    const rows = await m
      .getRepository(TaskDependencyEntity)
      .createQueryBuilder("d")
      .select(["d.task_id AS task_id", "d.depends_on AS depends_on", "d.state AS state"])
      .where("d.task_id IN (:...part) AND d.kind = 'success' AND d.state IN ('failed', 'cancelled', 'deleted')", { part })
      .orderBy("d.depends_on")
      .getRawMany<{ task_id: string | number; depends_on: string | number; state: Exclude<DependencyState, "open" | "succeeded"> }>();
    out.push(...rows.map((r) => ({ task: String(r.task_id), on: String(r.depends_on), state: r.state })));
  }
  return out;
}

/**
 * Waiting tasks none of whose edges is open, at most `limit`, by id: what a crash between marking
 * a task's last edge and releasing it (or settling it by a failure) leaves behind. Served by the
 * `ormq_tasks_waiting` index (and, for each, the `(task_id, state)` one).
 */
export async function strandedWaiting(m: EntityManager, limit: number): Promise<string[]> {
  const edges = tablesOf(m.connection).dependencies;
  const rows = await m
    .getRepository(BaseTaskEntity)
    .createQueryBuilder("t")
    .select("t.id AS id")
    .where(`t.status = 'waiting' AND NOT EXISTS (SELECT 1 FROM ${edges} d WHERE d.task_id = t.id AND d.state = 'open')`)
    .orderBy("t.id")
    .limit(limit)
    .getRawMany<{ id: string | number }>();
  return rows.map((r) => String(r.id));
}

/**
 * Tasks settled by a dependency's failure wait again (a retried dependency): guarded by their
 * status and by never having run. Returns those that did.
 */
export async function waitAgain(m: EntityManager, ids: readonly string[], now: Date): Promise<string[]> {
  const out: string[] = [];
  for (const part of chunks(ids)) {
    const result = await m
      .createQueryBuilder()
      .update(BaseTaskEntity)
      .set({ status: "waiting", lastError: null, finishedAt: null, updatedAt: now })
      .where("id IN (:...ids) AND status IN ('failed', 'cancelled') AND attempts = 0", { ids: part })
      .updateEntity(false)
      .execute();
    if (!result.affected) continue;
    const rows = await m.getRepository(BaseTaskEntity).createQueryBuilder("t").select("t.id AS id").where("t.id IN (:...ids) AND t.status = 'waiting'", { ids: part }).getRawMany<{ id: string | number }>();
    out.push(...rows.map((r) => String(r.id)));
  }
  return out;
}

/** The edges from `tasks` to `dependency` that recorded a failure are open again. */
export async function reopenEdges(m: EntityManager, tasks: readonly string[], dependency: string): Promise<void> {
  for (const part of chunks(tasks)) {
    await m
      .createQueryBuilder()
      .update(TaskDependencyEntity)
      .set({ state: "open" })
      .where("depends_on = :dependency AND task_id IN (:...part) AND state IN ('failed', 'cancelled', 'deleted')", { dependency, part })
      .execute();
  }
}

/** The tasks directly below `ids` in a workflow: their children (parent_id) and their dependents (edges). */
export async function directlyBelow(m: EntityManager, ids: readonly string[]): Promise<string[]> {
  const found = new Set<string>();
  for (const part of chunks(ids)) {
    const children = await m.getRepository(BaseTaskEntity).createQueryBuilder("t").select("t.id AS id").where("t.parent_id IN (:...part)", { part }).getRawMany<{ id: string | number }>();
    for (const row of children) found.add(String(row.id));
    const dependents = await m.getRepository(TaskDependencyEntity).createQueryBuilder("d").select("d.task_id AS id").where("d.depends_on IN (:...part)", { part }).getRawMany<{ id: string | number }>();
    for (const row of dependents) found.add(String(row.id));
  }
  return [...found];
}

/**
 * A task seen from another in its workflow. `edge`: what the edge between them records. Type and
 * status are null for a task since deleted (an edge outlives its dependency's row).
 */
export interface RelatedTaskRow {
  id: string;
  type: string | null;
  status: TaskStatus | null;
  edge?: DependencyState;
}

/** Up to `limit` of a task's children (by id) and how many it has. */
export async function childrenOf(m: EntityManager, id: string, limit: number): Promise<{ tasks: RelatedTaskRow[]; total: number }> {
  const repo = m.getRepository(BaseTaskEntity);
  const rows = await repo
    .createQueryBuilder("t")
    .select(["t.id AS id", "t.type AS type", "t.status AS status"])
    .where("t.parent_id = :id", { id })
    .orderBy("t.id")
    .limit(limit)
    .getRawMany<{ id: string | number; type: string; status: TaskStatus }>();
  const total = rows.length < limit ? rows.length : await repo.createQueryBuilder("t").where("t.parent_id = :id", { id }).getCount();
  return { tasks: rows.map((r) => ({ id: String(r.id), type: r.type, status: r.status })), total };
}

/**
 * Up to `limit` of a task's dependencies ("on": the tasks it waits for) or dependents ("of": the
 * tasks that wait for it), by id, with what each edge records, and how many there are. A task
 * since deleted is listed with status null.
 */
export async function edgesOf(m: EntityManager, id: string, side: "on" | "of", limit: number): Promise<{ tasks: RelatedTaskRow[]; total: number }> {
  const [mine, other] = side === "on" ? ["task_id", "depends_on"] : ["depends_on", "task_id"];
  const repo = m.getRepository(TaskDependencyEntity);
  const rows = await repo
    .createQueryBuilder("d")
    .leftJoin(BaseTaskEntity, "t", `t.id = d.${other}`)
    .select([`d.${other} AS id`, "d.state AS edge", "t.type AS type", "t.status AS status"])
    .where(`d.${mine} = :id`, { id })
    .orderBy(`d.${other}`)
    .limit(limit)
    .getRawMany<{ id: string | number; edge: DependencyState; type: string | null; status: TaskStatus | null }>();
  const total = rows.length < limit ? rows.length : await repo.createQueryBuilder("d").where(`d.${mine} = :id`, { id }).getCount();
  return { tasks: rows.map((r) => ({ id: String(r.id), type: r.type ?? null, status: r.status ?? null, edge: r.edge })), total };
}

/** How many of these tasks stand in each status. */
export async function statusCounts(m: EntityManager, ids: readonly string[]): Promise<Map<TaskStatus, number>> {
  const counts = new Map<TaskStatus, number>();
  for (const part of chunks(ids)) {
    const rows = await m
      .getRepository(BaseTaskEntity)
      .createQueryBuilder("t")
      .select(["t.status AS status", "COUNT(*) AS n"])
      .where("t.id IN (:...part)", { part })
      .groupBy("t.status")
      .getRawMany<{ status: TaskStatus; n: string | number }>();
    for (const row of rows) counts.set(row.status, (counts.get(row.status) ?? 0) + Number(row.n));
  }
  return counts;
}
