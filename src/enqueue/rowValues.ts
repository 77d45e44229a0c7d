/**
 * A task's row as ormq writes it without TypeORM's save(): the columns an INSERT names and each
 * one's value, converted as save() would convert it. For enqueueMany's multi-row inserts and for
 * the task a schedule writes at each tick.
 */
import type { DataSource, EntityMetadata } from "typeorm";
import type { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { baseColumnKind, isRowColumn, WRITE } from "../baseColumns";
import { TaskDefinitionError } from "../errors";

/** The columns an INSERT of a task of this class names: all but generated and relation ones. */
export function insertedColumns(metadata: EntityMetadata): EntityMetadata["columns"] {
  return metadata.columns.filter((c) => !c.isGenerated && isRowColumn(c));
}

type Column = EntityMetadata["columns"][number];
type Getter = (task: BaseTaskEntity) => unknown;

/**
 * A column's value as save() would write it: transformer, then the driver's conversion.
 * BaseTaskEntity's own columns are converted directly (see baseColumns.ts).
 */
export function persistentValue(dataSource: DataSource, metadata: EntityMetadata, column: Column, task: BaseTaskEntity): unknown {
  return valueGetter(dataSource, metadata, column)(task);
}

/** A class's inserted columns and, per task, their values in that order: worked out once per class. */
export interface RowWriter {
  columns: EntityMetadata["columns"];
  values(task: BaseTaskEntity): unknown[];
}

const writers = new WeakMap<EntityMetadata, RowWriter>();

/**
 * The row writer of a class (cached: a metadata belongs to one DataSource). enqueueMany writes tens
 * of thousands of rows a second, each naming every column: deciding each column's path once per
 * class rather than once per value took about a microsecond a task off its profile.
 */
export function rowWriter(dataSource: DataSource, metadata: EntityMetadata): RowWriter {
  let writer = writers.get(metadata);
  if (!writer) {
    const columns = insertedColumns(metadata);
    const getters = columns.map((c) => valueGetter(dataSource, metadata, c));
    writer = { columns, values: (task) => getters.map((get) => get(task)) };
    writers.set(metadata, writer);
  }
  return writer;
}

function valueGetter(dataSource: DataSource, metadata: EntityMetadata, column: Column): Getter {
  if (column.isDiscriminator) return () => metadata.discriminatorValue;
  const unset = defaultOf(metadata, column);
  const kind = baseColumnKind(column);
  if (kind) {
    // Read directly; an unset one (most are, at enqueue) takes its default without TypeORM's
    // getEntityValue, which was the largest single cost of enqueueMany's rows once this release
    // added five columns to every task (their transformers map undefined to undefined anyway).
    const property = column.propertyName;
    const write = WRITE[kind];
    return (task) => {
      const value = (task as unknown as Record<string, unknown>)[property];
      return value !== undefined ? (write(value) ?? null) : unset();
    };
  }
  return (task) => {
    const value = column.getEntityValue(task, true);
    return value === undefined ? unset() : (dataSource.driver.preparePersistentValue(value, column) ?? null);
  };
}

/**
 * An unset column's value: a multi-row INSERT names every column in every row, so it gets its
 * declared default here. A default that is SQL (a function) cannot be written this way: refused
 * when a task leaves such a column unset.
 */
function defaultOf(metadata: EntityMetadata, column: Column): () => unknown {
  if (typeof column.default === "function") {
    return () => {
      throw new TaskDefinitionError(`${metadata.name}.${column.propertyName} is unset and its default is SQL; set it (or use save() rather than enqueueMany)`);
    };
  }
  const value = column.default ?? null;
  return () => value;
}
