import type { SqlSpelling } from "../contract";
import { quoteIdentifier } from "../indexDdl";

/** SQLite's spelling: `?` parameters bound in text order, VALUES lists for lists. */
const escape = quoteIdentifier;

export const sqliteSql: SqlSpelling = {
  parameter: () => "?",
  // SQLITE_MAX_VARIABLE_NUMBER since 3.32.
  maxParameters: 32_766,
  escape,
  intDiv: (a, b) => `(${a}) / (${b})`,
  rowLocks: false,
  parts: (values) => {
    const marks = (list: readonly unknown[]) => {
      values.push(...list);
      return list.map(() => "?").join(", ");
    };
    return {
      param: (value) => {
        values.push(value);
        return "?";
      },
      inList: (column, list) => `${column} IN (${marks(list)})`,
      notInList: (column, list) => `${column} NOT IN (${marks(list)})`,
      inIds: (column, ids) => `${column} IN (${marks(ids)})`,
      // One writer at a time: nothing to lock.
      lockRows: "",
      inClaimOrder: "",
      escape,
      concat: (...parts) => parts.join(" || "),
      castText: (e) => `CAST(${e} AS TEXT)`,
      materialized: (name) => `${name} AS MATERIALIZED`,
      // SQLite does not enforce a varchar's length: a key of any length is stored as it is.
      boundedKey: (e) => e,
    };
  },
};
