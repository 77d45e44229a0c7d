/**
 * MySQL's and MariaDB's spelling of ormq's shared statements (issue 27: the third database, in
 * progress; see docs/mysql.md), tested on a real MariaDB by tests/dialect/mariadb.test.ts.
 */
import type { SqlSpelling } from "../contract";

/** A backquoted identifier. */
export const quoteIdentifier = (name: string) => `\`${name.replace(/`/g, "``")}\``;
const escape = quoteIdentifier;

/**
 * `?` parameters bound in text order; integers written as literals (a LIMIT takes no bound
 * parameter in a server-side prepared statement, and they are ormq's own numbers, never a
 * user's text); lists as `IN (?, …)`, an empty one as a constant (MySQL has no `IN ()`).
 */
export const mysqlSql: SqlSpelling = {
  parameter: () => "?",
  // The protocol's limit on a prepared statement's parameters.
  maxParameters: 65_535,
  escape,
  intDiv: (a, b) => `(${a}) DIV (${b})`,
  rowLocks: true,
  parts: (values) => {
    const marks = (list: readonly unknown[]) => {
      values.push(...list);
      return list.map(() => "?").join(", ");
    };
    return {
      param: (value, type) => {
        if (type !== "text" && typeof value === "number" && Number.isSafeInteger(value)) return String(value);
        values.push(value);
        return "?";
      },
      inList: (column, list) => (list.length === 0 ? "FALSE" : `${column} IN (${marks(list)})`),
      notInList: (column, list) => (list.length === 0 ? "TRUE" : `${column} NOT IN (${marks(list)})`),
      inIds: (column, ids) => (ids.length === 0 ? "FALSE" : `${column} IN (${marks(ids)})`),
      // Limited claims are serialised by a named lock (GET_LOCK) before the pick.
      lockRows: "",
      inClaimOrder: "",
      escape,
      concat: (...parts) => `CONCAT(${parts.join(", ")})`,
      castText: (e) => `CAST(${e} AS CHAR)`,
      // Neither has MATERIALIZED; both compute a CTE read by window functions once.
      materialized: (name) => `${name} AS`,
      // A derived table here cannot read the outer row (no LATERAL in MariaDB), so the key cannot
      // be computed once and tested for length: every limited key is stored as its digest, 32
      // characters whatever the value's length. The same expression at the pick and at the
      // record, so they match.
      boundedKey: (e) => `MD5(${e})`,
    };
  },
};

/**
 * The database's clock in epoch ms, in a statement: every due time and lease compares against
 * this one clock (the session's time zone cancels out of UNIX_TIMESTAMP).
 */
export const MYSQL_NOW_MS = `CAST(ROUND(UNIX_TIMESTAMP(CURRENT_TIMESTAMP(3)) * 1000) AS SIGNED)`;

/** The clock read on its own, as `now`. */
export const MYSQL_CLOCK_SQL = `SELECT ${MYSQL_NOW_MS} AS now`;
