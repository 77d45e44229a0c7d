/**
 * The pick of a claim under concurrency limits, for both databases: which ready tasks may start
 * without any limit going over, counting the tasks already running (claimed: a task waiting in a
 * worker's buffer counts) across every worker. The caller serialises limited claims (PostgreSQL:
 * an advisory lock taken before this statement's snapshot; SQLite: one writer), so two claims
 * cannot both see the same room.
 *
 * Each candidate is ranked within its key (a class limit's key: its type and `by` column value)
 * and within its queue (a queue limit), among the candidates read, in claim order (a fair class's:
 * in its rounds, see fairClaim.ts); a candidate is picked when its
 * rank plus the running count stays within the limit. Rate limits work the same way, counting the
 * claims of the window still held in ormq_rate_claims instead of the running tasks (a sliding
 * window by the database's clock at claim). A rank among all candidates is never lower
 * than its rank among those picked, so with two limits on one task neither can be exceeded.
 *
 * Written once for every database with its `SqlParts` (a window function and a CTE computed once
 * are all it asks of the database).
 */
import type { SqlParts } from "./contract";
import type { ClaimLimits, ClaimRequest, FairClaim } from "./dialect";
import { fairHeadsSql, fairRoundSql } from "./fairClaim";
import { readyWhere } from "./lifecycle";

/**
 * Candidates read per limited claim, per task asked for, and the most: a bound on the work, not on
 * correctness. Tasks of saturated keys at the head of the queue can fill the scan, and then fewer
 * are claimed (the others wait for the next claim, not forever: the head drains).
 */
export const LIMITED_SCAN_PER_TASK = 4;
export const LIMITED_SCAN_MIN = 200;
export const LIMITED_SCAN_MAX = 5_000;

/**
 * SQL returning the ids to claim (`SELECT id …`), at most `limit`, in claim order. Text is built
 * left to right, so positional parameters are numbered in order.
 */
export function limitedPickSql(tasks: string, rateClaims: string, now: () => string, request: ClaimRequest, limits: ClaimLimits, limit: number, sql: SqlParts, fair?: FairPick): string {
  const limitedTypes = limits.types.map((t) => t.type);
  const limitedQueues = limits.queues.map((q) => q.queue);
  const ratedTypes = limits.typeRates.map((t) => t.type);
  const ratedQueues = limits.queueRates.map((q) => q.queue);
  const candLimited = () =>
    [sql.inList("type", limitedTypes), sql.inList("type", ratedTypes), sql.inList("queue", limitedQueues), sql.inList("queue", ratedQueues)].join(" OR ");
  // Every part is written in the order it appears in the text: positional parameters (SQLite's
  // `?`) are bound in the order they were pushed.
  const cand = fair ? fairCandidates(tasks, now, request, limits, fair, sql, candLimited) : fifoCandidates(tasks, now, request, limits, limit, sql, candLimited);
  // A fair class's candidates are taken in rounds across its keys (see fairClaim.ts), within
  // priority: the limits decide which may start, the rounds in which order.
  const rounds = fair ? `, ${fairRoundSql(fair.fair, fair.keys, sql)}` : "";
  const inOrder = (alias: string) => (fair ? `${alias}priority DESC, ${alias}fround, ${alias}fplace, ${alias}fair_key, ${alias}run_at, ${alias}id` : `${alias}priority DESC, ${alias}run_at, ${alias}id`);
  const fairColumns = fair ? ", fround, fplace, fair_key" : "";
  const usedKey = keyOfType(limits.types, "type", sql);
  const usedTypes = sql.inList("type", limitedTypes);
  const usedQueues = sql.inList("queue", limitedQueues);
  const rateNow = now();
  const typeMax = caseOf("r.type", limits.types.map((t) => [t.type, t.max]), sql);
  const notLimitedQueue = sql.notInList("r.queue", limitedQueues);
  const queueMax = caseOf("r.queue", limits.queues.map((q) => [q.queue, q.max]), sql);
  const rateMax = caseOf("r.type", limits.typeRates.map((t) => [t.type, t.max]), sql);
  const notRatedQueue = sql.notInList("r.queue", ratedQueues);
  const queueRateMax = caseOf("r.queue", limits.queueRates.map((q) => [q.queue, q.max]), sql);
  const most = sql.param(limit, "int");
  const key = sql.escape("key");
  const queueRateKey = (alias: string) => sql.concat("'q:'", `${alias}queue`);
  const order = inOrder("r.");
  return `
    WITH ${sql.materialized("cand")} (${cand}), ranked AS (
      SELECT id, priority, run_at, queue, type, tkey, rkey${fairColumns},
        row_number() OVER (PARTITION BY tkey ORDER BY ${inOrder("")}) AS trn,
        row_number() OVER (PARTITION BY rkey ORDER BY ${inOrder("")}) AS rrn,
        row_number() OVER (PARTITION BY queue ORDER BY ${inOrder("")}) AS qrn
      FROM (SELECT id, priority, run_at, queue, type, tkey, rkey${fair ? ", fair_key" : ""}${rounds} FROM cand) c
    ), tused AS (
      SELECT ${usedKey} AS tkey, count(*) AS n FROM ${tasks}
      WHERE status = 'running' AND ${usedTypes} GROUP BY 1
    ), qused AS (
      SELECT queue, count(*) AS n FROM ${tasks}
      WHERE status = 'running' AND ${usedQueues} GROUP BY queue
    ), rused AS (
      SELECT ${key} AS k, count(*) AS n FROM ${rateClaims}
      WHERE until > ${rateNow} AND ${key} IN (SELECT rkey FROM cand UNION SELECT ${queueRateKey("")} FROM cand)
      GROUP BY ${key}
    )
    SELECT r.id${fair ? `, row_number() OVER (ORDER BY ${order}) AS ord` : ""} FROM ranked r
      LEFT JOIN tused tu ON tu.tkey = r.tkey
      LEFT JOIN qused qu ON qu.queue = r.queue
      LEFT JOIN rused ru ON ru.k = r.rkey
      LEFT JOIN rused rq ON rq.k = ${queueRateKey("r.")}
    WHERE (r.tkey IS NULL OR r.trn + COALESCE(tu.n, 0) <= ${typeMax})
      AND (${notLimitedQueue} OR r.qrn + COALESCE(qu.n, 0) <= ${queueMax})
      AND (r.rkey IS NULL OR r.rrn + COALESCE(ru.n, 0) <= ${rateMax})
      AND (${notRatedQueue} OR r.qrn + COALESCE(rq.n, 0) <= ${queueRateMax})
    ORDER BY ${order}
    LIMIT ${most}`;
}

/**
 * A fair class's limited claim: the keys read (statement 1 of fairClaim.ts) and the fair index's
 * hint where the database needs one. Its pick then returns `id, ord`, the order to start them in.
 */
export interface FairPick {
  fair: FairClaim;
  keys: readonly string[];
  index?: string;
}

/** The candidates of a limited claim: the head of the limited ready tasks, in claim order. */
function fifoCandidates(tasks: string, now: () => string, request: ClaimRequest, limits: ClaimLimits, limit: number, sql: SqlParts, limited: () => string): string {
  const candKey = keyOfType(limits.types, "type", sql);
  const candRateKey = keyOfType(limits.typeRates, "type", sql);
  const candNow = now();
  const candTypes = sql.inList("type", request.types);
  const queueFilter = request.queues ? `AND ${sql.inList("queue", request.queues)}` : "";
  const excluded = request.excludedQueues?.length ? `AND ${sql.notInList("queue", request.excludedQueues)}` : "";
  const candLimited = limited();
  const scan = sql.param(Math.min(LIMITED_SCAN_MAX, Math.max(LIMITED_SCAN_MIN, limit * LIMITED_SCAN_PER_TASK)), "int");
  return `
      SELECT id, priority, run_at, queue, type, ${candKey} AS tkey, ${candRateKey} AS rkey FROM ${tasks}
      WHERE ${readyWhere(candNow)} AND ${candTypes} ${queueFilter} ${excluded} ${sql.inClaimOrder}
        AND (${candLimited})
      ORDER BY priority DESC, run_at, id
      LIMIT ${scan}
      ${sql.lockRows}`;
}

/**
 * The candidates of a fair class's limited claim: the heads of its keys (see fairHeadsSql), so a
 * key with a long backlog does not fill the candidates and the rounds reach every key read.
 */
function fairCandidates(tasks: string, now: () => string, request: ClaimRequest, limits: ClaimLimits, fair: FairPick, sql: SqlParts, limited: () => string): string {
  const heads = fairHeadsSql(
    tasks,
    now,
    request,
    fair.fair,
    fair.keys,
    sql,
    fair.index,
    () => `, ${keyOfType(limits.types, "type", sql)} AS tkey, ${keyOfType(limits.typeRates, "type", sql)} AS rkey`,
    () => ` AND (${limited()})`,
  );
  return `
      SELECT id, priority, run_at, queue, type, tkey, rkey, fair_key FROM (${heads}) heads`;
}

/**
 * What a limited claim records for rate limits: one row per claimed task and rate limit, held
 * until its window ends, and the rows whose window has ended go. Two statements, run after the
 * claim in its transaction; `ids` are the claimed tasks (bound as one list).
 */
export function rateClaimsSql(
  tasks: string,
  rateClaims: string,
  now: (sql: SqlParts) => string,
  limits: ClaimLimits,
  ids: readonly string[],
  partsFor: (values: unknown[]) => SqlParts,
): { text: string; values: unknown[] }[] {
  const pruneValues: unknown[] = [];
  const prune = { text: `DELETE FROM ${rateClaims} WHERE until <= ${now(partsFor(pruneValues))}`, values: pruneValues };
  if (ids.length === 0 || (limits.typeRates.length === 0 && limits.queueRates.length === 0)) return [prune];
  const values: unknown[] = [];
  const sql = partsFor(values);
  const insertNow = now(sql);
  const typeKey = keyOfType(limits.typeRates, "type", sql);
  const typeWindow = caseOf("type", limits.typeRates.map((t) => [t.type, t.perMs]), sql, "bigint");
  const typeIds = sql.inIds("id", ids);
  const queueWindow = caseOf("queue", limits.queueRates.map((q) => [q.queue, q.perMs]), sql, "bigint");
  const queueIds = sql.inIds("id", ids);
  const rated = sql.inList("queue", limits.queueRates.map((q) => q.queue));
  const queueKey = sql.concat("'q:'", "queue");
  const insert = `
    INSERT INTO ${rateClaims} (${sql.escape("key")}, until)
    SELECT k, ${insertNow} + w FROM (
      SELECT ${typeKey} AS k, ${typeWindow} AS w FROM ${tasks} WHERE ${typeIds}
      UNION ALL
      SELECT ${queueKey} AS k, ${queueWindow} AS w FROM ${tasks} WHERE ${queueIds} AND ${rated}
    ) x WHERE k IS NOT NULL`;
  return [prune, { text: insert, values }];
}

/** A type's key under one kind of limit (`t:<type>:<by value>`), or NULL for types without one. */
function keyOfType(limits: readonly { type: string; column: string | null }[], typeColumn: string, sql: SqlParts): string {
  if (limits.length === 0) return sql.castText("NULL");
  const arms = limits.map((t) => {
    const value = t.column === null ? "''" : `COALESCE(${sql.castText(sql.escape(t.column))}, '')`;
    return `WHEN ${sql.param(t.type, "text")} THEN ${sql.concat(sql.param(`t:${t.type}:`, "text"), value)}`;
  });
  return sql.boundedKey(`CASE ${typeColumn} ${arms.join(" ")} ELSE NULL END`);
}

/** `CASE column WHEN a THEN x … END` over parameters; 0 when there are none. */
function caseOf(column: string, arms: readonly (readonly [string, number])[], sql: SqlParts, type: "int" | "bigint" = "int"): string {
  if (arms.length === 0) return "0";
  return `CASE ${column} ${arms.map(([when, then]) => `WHEN ${sql.param(when, "text")} THEN ${sql.param(then, type)}`).join(" ")} END`;
}
