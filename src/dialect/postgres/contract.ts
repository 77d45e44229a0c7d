import type { DatabaseContract } from "../contract";
import { dropUniqueGuardStatements, uniqueGuardInstalled, uniqueGuardStatements } from "./uniqueGuard";
import { arrayInsert } from "./arrayInsert";
import { PostgresDialect } from "./dialect";
import { notifyNewTasks } from "./listener";
import { guardPostgresPool } from "./poolGuard";
import { createIndexSql, dropIndexSql } from "../indexDdl";
import { postgresSql } from "./sql";
import { UNIQUE_INDEXES } from "../taskIndexes";

/** PostgreSQL: a server with its own clock, numbered parameters, unnest inserts and NOTIFY. */
export const postgresContract: DatabaseContract = {
  name: "postgres",
  connection: {
    drivers: ["postgres"],
    optionsForUrl: (url) => (/^postgres(ql)?:\/\//.test(url) ? { type: "postgres", url } : null),
    databaseFile: () => null,
    writesTakeTurnsPerFile: false,
    prepare: guardPostgresPool,
  },
  sql: postgresSql,
  clockSql: `SELECT (floor(extract(epoch from clock_timestamp()) * 1000))::bigint AS now`,
  schema: {
    ddlCommits: false,
    generatedIdType: "bigint",
    createIndex: createIndexSql,
    dropIndex: dropIndexSql,
    uniqueGuard: { install: (tasks) => [...uniqueIndexStatements(tasks), ...uniqueGuardStatements(tasks)], drop: dropUniqueGuardStatements, installed: uniqueGuardInstalled, installWhenMissing: false },
  },
  enqueue: { insertWithoutReturning: null, arrayInsert, autocommitSave: true, insertSkipped: null, duplicateFails: false, notify: notifyNewTasks },
  worker: (dataSource, tables, workerId, logger, options) => new PostgresDialect(dataSource, tables, workerId, logger, options),
};

/** The unique indexes the guard stands on, where a schema made by synchronize lacks them (see taskIndexes.ts). */
function uniqueIndexStatements(tasks: string): string[] {
  return UNIQUE_INDEXES.map((index) => createIndexSql({ ...index, table: tasks, ifNotExists: true }));
}
