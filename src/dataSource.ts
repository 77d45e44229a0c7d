import type { DataSource } from "typeorm";
import { BaseTaskEntity } from "../entities/BaseTaskEntity";
import { OrmqConfigurationError } from "./errors";
import type { TaskClass } from "./registry";

/** The DataSource given, else the one the class is bound to (BaseEntity keeps it in a static). */
export function resolveDataSource(cls: TaskClass, given?: DataSource): DataSource {
  const bound = (c: unknown) => (c as { dataSource?: DataSource | null }).dataSource ?? undefined;
  const dataSource = given ?? bound(cls) ?? bound(BaseTaskEntity);
  if (!dataSource) {
    throw new OrmqConfigurationError(
      `no DataSource for ${cls.name}: pass { dataSource } or initialize a DataSource whose entities include it`,
    );
  }
  return dataSource;
}
