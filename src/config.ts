import type { DataSourceOptions } from "typeorm";
import { ormqEntities } from "../entities";
import { ormqMigrations } from "../migrations";
import { dataSourceOptionsForUrl, installSqliteIntegerKey } from "./dialect";

/** The file a DataSource keeps its database in (SQLite), or null for a server or `:memory:`. */
export { databaseFileOf } from "./dialect";
import { ormqSubscribers } from "./enqueue/subscriber";

/** Where ormq looks for its database when none is given: `ORMQ_DATABASE_URL`, else this file. */
export const DEFAULT_DATABASE = "./ormq.sqlite";

/**
 * DataSource options for a database URL: a `postgres://` (or `postgresql://`) URL, a SQLite file
 * path (or `sqlite:` URL), or a `mariadb://` / `mysql://` URL (in progress: docs/mysql.md); any
 * other scheme is refused. ormq's entities, subscribers and migrations are included; add your task classes to
 * `entities` (spread these options and extend the arrays).
 */
export function ormqDataSourceOptions(url: string = process.env.ORMQ_DATABASE_URL ?? DEFAULT_DATABASE): DataSourceOptions {
  installSqliteIntegerKey(); // before the DataSource is built: synchronize and migration:generate need it
  const common = {
    entities: [...ormqEntities],
    subscribers: [...ormqSubscribers],
    migrations: [...ormqMigrations],
  };
  return { ...dataSourceOptionsForUrl(url), ...common };
}
