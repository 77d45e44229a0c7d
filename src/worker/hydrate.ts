import type { Driver, EntityMetadata } from "typeorm";
import type { ColumnMetadata } from "typeorm/metadata/ColumnMetadata";
import type { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { baseColumnKind, isRowColumn, READ } from "../baseColumns";
import type { TaskRow } from "../dialect";

interface Plan {
  create: () => BaseTaskEntity;
  columns: { name: string; set: (entity: BaseTaskEntity, raw: unknown) => void }[];
}

const plans = new WeakMap<EntityMetadata, Plan>();

/**
 * Turns a claimed row into an instance of its own task class, the way TypeORM loads an entity.
 * The plan for each class is made once: BaseTaskEntity's columns are converted directly (see
 * baseColumns.ts), a child class's own columns through TypeORM (driver conversion and
 * transformer), so they load exactly as a find() loads them.
 */
export function hydrate(metadata: EntityMetadata, driver: Driver, row: TaskRow): BaseTaskEntity {
  let plan = plans.get(metadata);
  if (!plan) {
    plan = makePlan(metadata, driver);
    plans.set(metadata, plan);
  }
  const entity = plan.create();
  for (const column of plan.columns) {
    const raw = row[column.name];
    if (raw !== undefined) column.set(entity, raw);
  }
  return entity;
}

function makePlan(metadata: EntityMetadata, driver: Driver): Plan {
  const columns = metadata.columns
    .filter(isRowColumn)
    .map((column) => ({ name: column.databaseName, set: setter(column, driver) }));
  return { create: () => metadata.create(undefined, { fromDeserializer: true }) as BaseTaskEntity, columns };
}

function setter(column: ColumnMetadata, driver: Driver): (entity: BaseTaskEntity, raw: unknown) => void {
  const property = column.propertyName;
  const kind = baseColumnKind(column);
  const convert = kind && READ[kind];
  if (convert) return (entity, raw) => ((entity as unknown as Record<string, unknown>)[property] = convert(raw));
  return (entity, raw) => column.setEntityValue(entity, driver.prepareHydratedValue(raw, column));
}

/** Columns of ormq's own that a worker never reads from a claimed row (see ClaimRequest.columns). */
const NOT_READ = new Set(["progress", "progress_message", "unique_window", "result"]);

/** The columns a claim of these types must bring back: what hydrate() sets, for every type. */
export function claimedColumns(metadatas: readonly EntityMetadata[]): string[] {
  const names = new Set<string>();
  for (const metadata of metadatas) {
    for (const column of metadata.columns) if (isRowColumn(column) && !NOT_READ.has(column.databaseName)) names.add(column.databaseName);
  }
  return [...names];
}
