/**
 * A task's row as ormq writes it without TypeORM's save(): the columns an INSERT names and each
 * one's value, converted as save() would convert it. For enqueueMany's multi-row inserts and for
 * the task a schedule writes at each tick.
 */
import type { DataSource, EntityMetadata } from "typeorm";
import type { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { baseColumnKind, WRITE } from "../baseColumns";
import { TaskDefinitionError } from "../errors";

/** The columns an INSERT of a task of this class names: all but generated and relation ones. */
export function insertedColumns(metadata: EntityMetadata): EntityMetadata["columns"] {
  return metadata.columns.filter((c) => !c.isGenerated && !c.isVirtual && !c.relationMetadata);
}

/**
 * A column's value as save() would write it: transformer, then the driver's conversion.
 * BaseTaskEntity's own columns are converted directly (see baseColumns.ts).
 */
export function persistentValue(dataSource: DataSource, metadata: EntityMetadata, column: EntityMetadata["columns"][number], task: BaseTaskEntity): unknown {
  if (column.isDiscriminator) return metadata.discriminatorValue;
  const kind = baseColumnKind(column);
  if (kind) {
    // Read directly; an unset one (most are, at enqueue) takes its default without TypeORM's
    // getEntityValue, which was the largest single cost of enqueueMany's rows once this release
    // added five columns to every task (their transformers map undefined to undefined anyway).
    const value = (task as unknown as Record<string, unknown>)[column.propertyName];
    if (value !== undefined) return WRITE[kind](value) ?? null;
    return defaultOf(metadata, column);
  }
  const value = column.getEntityValue(task, true);
  if (value === undefined) return defaultOf(metadata, column);
  return dataSource.driver.preparePersistentValue(value, column) ?? null;
}

/**
 * An unset column's value: a multi-row INSERT names every column in every row, so it gets its
 * declared default here. A default that is SQL (a function) cannot be written this way.
 */
function defaultOf(metadata: EntityMetadata, column: EntityMetadata["columns"][number]): unknown {
  if (typeof column.default === "function") {
    throw new TaskDefinitionError(`${metadata.name}.${column.propertyName} is unset and its default is SQL; set it (or use save() rather than enqueueMany)`);
  }
  return column.default ?? null;
}
