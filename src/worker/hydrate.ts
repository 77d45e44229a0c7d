import type { Driver, EntityMetadata } from "typeorm";
import type { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import type { TaskRow } from "../dialect";

/**
 * Turns a claimed row into an instance of its own task class, the way TypeORM loads an entity:
 * the driver's conversion and the column's transformer, for the base columns and the child's.
 */
export function hydrate(metadata: EntityMetadata, driver: Driver, row: TaskRow): BaseTaskEntity {
  const entity = metadata.create(undefined, { fromDeserializer: true }) as BaseTaskEntity;
  for (const column of metadata.columns) {
    if (column.isVirtual || column.relationMetadata) continue;
    const raw = row[column.databaseName];
    if (raw === undefined) continue;
    column.setEntityValue(entity, driver.prepareHydratedValue(raw, column));
  }
  entity.id = String(entity.id); // one id type on both dialects, as after a find()
  return entity;
}
