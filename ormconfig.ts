/**
 * The project's own DataSource, for the TypeORM CLI and the examples:
 *   ORMQ_DATABASE_URL=postgres://user:pass@host/db npx typeorm -d dist/ormconfig.js migration:run
 * `ORMQ_DATABASE_URL` is a postgres:// URL or a SQLite file path (default ./ormq.sqlite).
 */
import "reflect-metadata";
import { DataSource } from "typeorm";
import { ormqDataSourceOptions } from "./src/config";

export default new DataSource(ormqDataSourceOptions());
