import type { DialectTraits } from "../traits";
import { dropUniqueGuardStatements, uniqueGuardInstalled, uniqueGuardStatements } from "./uniqueGuard";
import { arrayInsert } from "./arrayInsert";
import { PostgresDialect } from "./dialect";
import { notifyNewTasks } from "./listener";
import { guardPostgresPool } from "./poolGuard";

/** PostgreSQL: a server with its own clock, numbered parameters, unnest inserts and NOTIFY. */
export const postgresTraits: DialectTraits = {
  name: "postgres",
  driver: "postgres",
  optionsForUrl: (url) => (/^postgres(ql)?:\/\//.test(url) ? { type: "postgres", url } : null),
  databaseFile: () => null,
  writesTakeTurnsPerFile: false,
  clockSql: `SELECT (floor(extract(epoch from clock_timestamp()) * 1000))::bigint AS now`,
  parameter: (n) => `$${n}`,
  // The protocol's limit.
  maxParameters: 65_535,
  arrayInsert,
  autocommitSave: true,
  uniqueGuard: { install: uniqueGuardStatements, drop: dropUniqueGuardStatements, installed: uniqueGuardInstalled, insertSkipped: null, installWhenMissing: false },
  notify: notifyNewTasks,
  prepare: guardPostgresPool,
  createDialect: (dataSource, tables, workerId, logger, options) => new PostgresDialect(dataSource, tables, workerId, logger, options),
};
