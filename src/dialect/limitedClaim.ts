/**
 * The pick of a claim under concurrency limits, for both databases: which ready tasks may start
 * without any limit going over, counting the tasks already running (claimed: a task waiting in a
 * worker's buffer counts) across every worker. The caller serialises limited claims (PostgreSQL:
 * an advisory lock taken before this statement's snapshot; SQLite: one writer), so two claims
 * cannot both see the same room.
 *
 * Each candidate is ranked within its key (a class limit's key: its type and `by` column value)
 * and within its queue (a queue limit), among the candidates read; a candidate is picked when its
 * rank plus the running count stays within the limit. A rank among all candidates is never lower
 * than its rank among those picked, so with two limits on one task neither can be exceeded.
 */
import type { ClaimLimits, ClaimRequest } from "./dialect";

/** Candidates read per limited claim: a bound on the work, not on correctness (fewer may be claimed). */
export const LIMITED_SCAN = 2_000;

/** How a dialect writes a parameter and a list test. */
export interface SqlParts {
  /** A bind parameter, cast to `type` where the dialect needs it. */
  param(value: unknown, type: "text" | "int" | "bigint"): string;
  /** `column IN (…)` for a list of text values (empty: false). */
  inList(column: string, values: readonly string[]): string;
  /** `column NOT IN (…)` (empty: true). */
  notInList(column: string, values: readonly string[]): string;
  /** Row lock for the candidates ("" where the dialect has one writer). */
  lockRows: string;
  escape(column: string): string;
}

/**
 * SQL returning the ids to claim (`SELECT id …`), at most `limit`, in claim order. Text is built
 * left to right, so positional parameters are numbered in order.
 */
export function limitedPickSql(tasks: string, now: string, request: ClaimRequest, limits: ClaimLimits, limit: number, sql: SqlParts): string {
  const typeKey = (typeColumn: string, column: (name: string) => string) => {
    if (limits.types.length === 0) return "NULL";
    const arms = limits.types.map((t) => {
      const value = t.column === null ? "''" : `COALESCE(CAST(${column(sql.escape(t.column))} AS TEXT), '')`;
      return `WHEN ${sql.param(t.type, "text")} THEN ${sql.param(t.type + ":", "text")} || ${value}`;
    });
    return `CASE ${typeColumn} ${arms.join(" ")} ELSE NULL END`;
  };
  const limitedTypes = limits.types.map((t) => t.type);
  const limitedQueues = limits.queues.map((q) => q.queue);
  // Every part is written in the order it appears in the text: positional parameters (SQLite's
  // `?`) are bound in the order they were pushed.
  const candKey = typeKey("type", (c) => c);
  const candTypes = sql.inList("type", request.types);
  const queueFilter = request.queues ? `AND ${sql.inList("queue", request.queues)}` : "";
  const excluded = request.excludedQueues?.length ? `AND ${sql.notInList("queue", request.excludedQueues)}` : "";
  const candLimited = `(${sql.inList("type", limitedTypes)} OR ${sql.inList("queue", limitedQueues)})`;
  const scan = sql.param(LIMITED_SCAN, "int");
  const usedKey = typeKey("type", (c) => c);
  const usedTypes = sql.inList("type", limitedTypes);
  const usedQueues = sql.inList("queue", limitedQueues);
  const typeMax = limits.types.length === 0 ? "0" : `CASE r.type ${limits.types.map((t) => `WHEN ${sql.param(t.type, "text")} THEN ${sql.param(t.max, "int")}`).join(" ")} END`;
  const notLimitedQueue = sql.notInList("r.queue", limitedQueues);
  const queueMax = limits.queues.length === 0 ? "0" : `CASE r.queue ${limits.queues.map((q) => `WHEN ${sql.param(q.queue, "text")} THEN ${sql.param(q.max, "int")}`).join(" ")} END`;
  const most = sql.param(limit, "int");
  return `
    WITH cand AS MATERIALIZED (
      SELECT id, priority, run_at, queue, type, ${candKey} AS tkey FROM ${tasks}
      WHERE status = 'pending' AND run_at <= ${now} AND ${candTypes} ${queueFilter} ${excluded}
        AND ${candLimited}
      ORDER BY priority DESC, run_at, id
      LIMIT ${scan}
      ${sql.lockRows}
    ), ranked AS (
      SELECT id, priority, run_at, queue, type, tkey,
        row_number() OVER (PARTITION BY tkey ORDER BY priority DESC, run_at, id) AS trn,
        row_number() OVER (PARTITION BY queue ORDER BY priority DESC, run_at, id) AS qrn
      FROM cand
    ), tused AS (
      SELECT ${usedKey} AS tkey, count(*) AS n FROM ${tasks}
      WHERE status = 'running' AND ${usedTypes} GROUP BY 1
    ), qused AS (
      SELECT queue, count(*) AS n FROM ${tasks}
      WHERE status = 'running' AND ${usedQueues} GROUP BY queue
    )
    SELECT r.id FROM ranked r
      LEFT JOIN tused tu ON tu.tkey = r.tkey
      LEFT JOIN qused qu ON qu.queue = r.queue
    WHERE (r.tkey IS NULL OR r.trn + COALESCE(tu.n, 0) <= ${typeMax})
      AND (${notLimitedQueue} OR r.qrn + COALESCE(qu.n, 0) <= ${queueMax})
    ORDER BY r.priority DESC, r.run_at, r.id
    LIMIT ${most}`;
}
