import type { DatabaseContract } from "../contract";
import { MysqlDialect } from "./dialect";
import { guardSkippedInsert } from "./guardDuplicates";
import { insertWithoutReturning } from "./insertIds";
import { createIndexSql, dropIndexSql, dropUniqueGuardStatements, uniqueGuardInstalled, uniqueGuardStatements } from "./schema";
import { MYSQL_CLOCK_SQL, mysqlSql } from "./sql";

/** MySQL 8.0+ and MariaDB 10.6+ (issue 27, in progress: docs/mysql.md). */
export const mysqlContract: DatabaseContract = {
  name: "mysql",
  connection: {
    drivers: ["mysql", "mariadb"],
    optionsForUrl: (url) => {
      const scheme = /^(mysql|mariadb):\/\//i.exec(url)?.[1]?.toLowerCase();
      if (!scheme) return null;
      // utf8mb4 for any text a task holds; ids (bigint) as strings, as on PostgreSQL.
      return { type: scheme as "mysql" | "mariadb", url, connectorPackage: "mysql2", charset: "utf8mb4_unicode_ci", supportBigNumbers: true, bigNumberStrings: true };
    },
    databaseFile: () => null,
    writesTakeTurnsPerFile: false,
    prepare: () => true,
  },
  sql: mysqlSql,
  clockSql: MYSQL_CLOCK_SQL,
  schema: {
    ddlCommits: true,
    generatedIdType: "bigint",
    createIndex: createIndexSql,
    dropIndex: dropIndexSql,
    // DDL commits the caller's transaction on MySQL: the guard is installed by the migration only.
    uniqueGuard: { install: uniqueGuardStatements, drop: dropUniqueGuardStatements, installed: uniqueGuardInstalled, installWhenMissing: false },
  },
  enqueue: { insertWithoutReturning, arrayInsert: null, autocommitSave: true, insertSkipped: guardSkippedInsert, duplicateFails: true, notify: null },
  worker: (dataSource, tables, workerId, logger, options) => new MysqlDialect(dataSource, tables, workerId, logger, options.onTransientRetry),
};
