import type { Driver, EntityMetadata } from "typeorm";
import type { ColumnMetadata } from "typeorm/metadata/ColumnMetadata";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import type { TaskRow } from "../dialect";

type Convert = (raw: unknown) => unknown;

const same: Convert = (raw) => raw;
const instant: Convert = (raw) => (raw === null ? null : new Date(Number(raw)));
const json: Convert = (raw) => (typeof raw === "string" ? JSON.parse(raw) : raw);

/**
 * How each of BaseTaskEntity's own columns is read, the same as TypeORM reads it (the driver's
 * conversion, then the column's transformer) on both dialects, without looking anything up per
 * row. The id is a string on both dialects, as after a find() (see BaseTaskEntity.normalizeId).
 */
const BASE_COLUMNS: Record<string, Convert> = {
  id: (raw) => String(raw),
  type: same,
  queue: same,
  status: same,
  priority: same,
  runAt: instant,
  attempts: same,
  maxAttempts: same,
  lastError: same,
  errors: json,
  result: json,
  createdAt: instant,
  updatedAt: instant,
  startedAt: instant,
  finishedAt: instant,
  lockedBy: same,
  lockedUntil: instant,
  timeoutMs: same,
  cancelRequestedAt: instant,
};

interface Plan {
  create: () => BaseTaskEntity;
  columns: { name: string; set: (entity: BaseTaskEntity, raw: unknown) => void }[];
}

const plans = new WeakMap<EntityMetadata, Plan>();

/**
 * Turns a claimed row into an instance of its own task class, the way TypeORM loads an entity.
 * The plan for each class is made once: BaseTaskEntity's columns are read by the converters
 * above, a child class's own columns through TypeORM (driver conversion and transformer), so
 * they load exactly as a find() loads them. TypeORM's per-column path for all 19 base columns
 * was about a tenth of a no-op attempt's CPU in the worker's profile.
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
    .filter((column) => !column.isVirtual && !column.relationMetadata)
    .map((column) => ({ name: column.databaseName, set: setter(column, driver) }));
  return { create: () => metadata.create(undefined, { fromDeserializer: true }) as BaseTaskEntity, columns };
}

function setter(column: ColumnMetadata, driver: Driver): (entity: BaseTaskEntity, raw: unknown) => void {
  const property = column.propertyName;
  const convert = column.target === BaseTaskEntity && !column.embeddedMetadata ? BASE_COLUMNS[property] : undefined;
  if (convert) return (entity, raw) => ((entity as unknown as Record<string, unknown>)[property] = convert(raw));
  return (entity, raw) => column.setEntityValue(entity, driver.prepareHydratedValue(raw, column));
}
