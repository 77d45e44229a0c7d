import type { DialectTraits } from "../traits";
import { dropUniqueGuardStatements, uniqueGuardInstalled, uniqueGuardStatements, uniqueInsertSkipped } from "./uniqueGuard";
import { guardSqliteConnection } from "./connectionGuard";
import { skipRereadOfSetColumns } from "./insertReread";
import { SqliteDialect } from "./dialect";

/**
 * SQLite: embedded (its clock is this host's), `?` parameters, VALUES inserts; workers notice
 * other connections' commits through `PRAGMA data_version`, so nothing is announced.
 */
export const sqliteTraits: DialectTraits = {
  name: "sqlite",
  driver: "better-sqlite3",
  // WAL lets readers and ormq's worker connection proceed while one connection writes.
  optionsForUrl: (url) => ({ type: "better-sqlite3", database: url.replace(/^sqlite:(\/\/)?/, ""), enableWAL: true }),
  databaseFile: (options) => (options.type === "better-sqlite3" && options.database !== ":memory:" ? options.database : null),
  writesTakeTurnsPerFile: true,
  clockSql: null,
  parameter: () => "?",
  // SQLITE_MAX_VARIABLE_NUMBER since 3.32.
  maxParameters: 32_766,
  arrayInsert: null,
  autocommitSave: false,
  uniqueGuard: { install: uniqueGuardStatements, drop: dropUniqueGuardStatements, installed: uniqueGuardInstalled, insertSkipped: uniqueInsertSkipped, installWhenMissing: true },
  notify: null,
  prepare: (dataSource) => {
    guardSqliteConnection(dataSource);
    skipRereadOfSetColumns(dataSource);
  },
  createDialect: (dataSource, tables, workerId, logger) => new SqliteDialect(dataSource, tables, workerId, logger),
};
