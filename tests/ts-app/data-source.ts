/**
 * A TypeScript DataSource module, as an application keeps it, for `ormq -d` through ts-node. It
 * imports the compiled ormq the way an application imports the package, and declares a column
 * without an explicit type, which only works when the loader emits decorator metadata. (Not part
 * of the type-checked project: it needs dist/ built.)
 */
import "reflect-metadata";
import { ChildEntity, Column, DataSource, type DataSourceOptions } from "typeorm";
import { BaseTaskEntity, ormqDataSourceOptions } from "../../dist/src";

@ChildEntity("ts_greeting")
export class TsGreeting extends BaseTaskEntity {
  @Column({ nullable: true })
  name!: string;

  async run() {
    return { hello: this.name };
  }
}

const base = ormqDataSourceOptions();
export default new DataSource({ ...base, entities: [...(base.entities as []), TsGreeting], synchronize: true } as DataSourceOptions);
