/** The bootstrap module of the executors scenario's threads and processes: the database in ORMQ_DATABASE_URL. */
import "reflect-metadata";
import { DataSource, type DataSourceOptions } from "typeorm";
import { ormqDataSourceOptions } from "../../src";
import { executorEntities } from "./tasks";

const base = ormqDataSourceOptions();
export const dataSource = new DataSource({ ...base, entities: [...(base.entities as []), ...executorEntities], logging: false } as DataSourceOptions);
