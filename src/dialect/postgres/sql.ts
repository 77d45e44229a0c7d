import type { SqlSpelling } from "../contract";
import { quoteIdentifier } from "../indexDdl";

/** Keys longer than this (characters) are stored as their first 100 characters and an md5 digest: 133 in all, far below the column's 600. */
export const MAX_STORED_KEY = 300;

const escape = quoteIdentifier;

/**
 * Every priority (the column is a 32-bit integer): a range that changes no result but steers the
 * planner to an index scan of the claim index in claim order. Without it, on a table never
 * analyzed yet (a new table's first burst, until autovacuum's analyze comes by), the planner picked
 * a bitmap scan and a sort, and a bitmap scan never marks the index entries of dead rows as dead:
 * every idle claim re-read the burst's dead entries at the head of the index (about 15,000 after a
 * drain of 20,000: 1.6 ms a claim instead of 0.3). An index scan marks them on its first pass.
 */
export const ALL_PRIORITIES = `priority >= ${-(2 ** 31)}`;

/** PostgreSQL's spelling: numbered parameters with explicit casts, arrays for lists. */
export const postgresSql: SqlSpelling = {
  parameter: (n) => `$${n}`,
  // The protocol's limit.
  maxParameters: 65_535,
  escape,
  intDiv: (a, b) => `(${a}) / (${b})`,
  rowLocks: true,
  idleTransactionLimit: (ms) => `SET LOCAL idle_in_transaction_session_timeout = ${Math.max(1, Math.round(ms))}`,
  parts: (values) => ({
    param: (value, type) => `$${values.push(value)}::${type}`,
    inList: (column, list) => `${column} = ANY($${values.push(list)}::text[])`,
    notInList: (column, list) => `${column} <> ALL($${values.push(list)}::text[])`,
    inIds: (column, ids) => `${column} = ANY($${values.push(ids)}::bigint[])`,
    // No row locks: limited claims run one at a time (the advisory lock), plain claims never
    // take limited tasks, and the claim's UPDATE re-checks each row is still pending (a cancel
    // that got in first wins). Locking every candidate read cost more than the claim itself.
    lockRows: "",
    inClaimOrder: `AND ${ALL_PRIORITIES}`,
    escape,
    concat: (...parts) => parts.join(" || "),
    castText: (e) => `CAST(${e} AS TEXT)`,
    materialized: (name) => `${name} AS MATERIALIZED`,
    // The key is computed once (a subquery's column) and replaced by a digest past the bound.
    boundedKey: (e) => `(SELECT CASE WHEN length(k) > ${MAX_STORED_KEY} THEN left(k, 100) || '#' || md5(k) ELSE k END FROM (SELECT ${e} AS k) bk)`,
  }),
};
