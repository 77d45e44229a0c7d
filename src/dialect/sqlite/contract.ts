import type { DatabaseContract } from "../contract";
import { createIndexSql, dropIndexSql } from "../indexDdl";
import { dropUniqueGuardStatements, uniqueGuardInstalled, uniqueGuardStatements, uniqueInsertSkipped } from "./uniqueGuard";
import { guardSqliteConnection } from "./connectionGuard";
import { skipRereadOfSetColumns } from "./insertReread";
import { SqliteDialect } from "./dialect";
import { sqliteSql } from "./sql";
import { UNIQUE_INDEXES } from "../taskIndexes";

/**
 * SQLite: embedded (its clock is this host's), `?` parameters, VALUES inserts; workers notice
 * other connections' commits through `PRAGMA data_version`, so nothing is announced.
 */
export const sqliteContract: DatabaseContract = {
  name: "sqlite",
  connection: {
    drivers: ["better-sqlite3"],
    // A file path, or a sqlite: URL; a URL of another scheme (mysql://…) is no file name: refused
    // by the caller, not made into a file of that name. WAL lets readers and ormq's worker
    // connection proceed while one connection writes.
    optionsForUrl: (url) =>
      /^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !/^sqlite:/i.test(url) ? null : { type: "better-sqlite3", database: url.replace(/^sqlite:(\/\/)?/i, ""), enableWAL: true },
    databaseFile: (options) => (options.type === "better-sqlite3" && options.database !== ":memory:" ? options.database : null),
    writesTakeTurnsPerFile: true,
    prepare: (dataSource) => {
      const guarded = guardSqliteConnection(dataSource);
      return skipRereadOfSetColumns(dataSource) && guarded;
    },
  },
  sql: sqliteSql,
  clockSql: null,
  schema: {
    // AUTOINCREMENT is allowed only on INTEGER PRIMARY KEY, which is 64-bit in SQLite anyway.
    ddlCommits: false,
    generatedIdType: "integer",
    createIndex: createIndexSql,
    dropIndex: dropIndexSql,
    uniqueGuard: { install: (tasks) => [...uniqueIndexStatements(tasks), ...uniqueGuardStatements(tasks)], drop: dropUniqueGuardStatements, installed: uniqueGuardInstalled, installWhenMissing: true },
  },
  enqueue: { insertWithoutReturning: null, arrayInsert: null, autocommitSave: false, insertSkipped: uniqueInsertSkipped, duplicateFails: false, notify: null },
  worker: (dataSource, tables, workerId, logger) => new SqliteDialect(dataSource, tables, workerId, logger),
};

/** The unique indexes the guard stands on, where a schema made by synchronize lacks them (see taskIndexes.ts). */
function uniqueIndexStatements(tasks: string): string[] {
  return UNIQUE_INDEXES.map((index) => createIndexSql({ ...index, table: tasks, ifNotExists: true }));
}
