import type { ColumnMetadata } from "typeorm/metadata/ColumnMetadata";
import { BaseTaskEntity } from "../entities/BaseTaskEntity";

/**
 * How BaseTaskEntity's own columns are stored: as is, an instant (epoch milliseconds in a bigint,
 * a `Date` in the entity: see `epochMillis`), JSON text (`simple-json`), or the generated id (a
 * string in the entity on both dialects, as after a find()).
 *
 * The worker reads thousands of claimed rows a second and enqueueMany writes tens of thousands:
 * both convert these columns directly, as TypeORM's driver and transformers would, instead of
 * going through TypeORM's per-column path (a tenth of a no-op attempt's CPU in the worker's
 * profile). A child class's own columns still go through TypeORM.
 */
export type BaseColumnKind = "same" | "instant" | "json" | "id";

const KINDS: Record<string, BaseColumnKind> = {
  id: "id",
  type: "same",
  queue: "same",
  status: "same",
  priority: "same",
  runAt: "instant",
  attempts: "same",
  maxAttempts: "same",
  lastError: "same",
  errors: "json",
  result: "json",
  createdAt: "instant",
  updatedAt: "instant",
  startedAt: "instant",
  finishedAt: "instant",
  lockedBy: "same",
  lockedUntil: "instant",
  timeoutMs: "same",
  cancelRequestedAt: "instant",
  uniqueKey: "same",
  uniqueWindow: "same",
  scheduleName: "same",
  progress: "same",
  progressMessage: "same",
  parentId: "id",
  traceContext: "same",
  fairKey: "same",
};

/** The column's kind if it is one of BaseTaskEntity's own, else undefined (use TypeORM's path). */
export function baseColumnKind(column: ColumnMetadata): BaseColumnKind | undefined {
  return column.target === BaseTaskEntity && !column.embeddedMetadata ? KINDS[column.propertyName] : undefined;
}

/**
 * Whether a column is stored in the task's row and read and written as the row's own: not virtual,
 * and not a relation's join column, except BaseTaskEntity's own (`parentId`, declared as a column
 * and used by the `parent` relation).
 */
export function isRowColumn(column: ColumnMetadata): boolean {
  return !column.isVirtual && (!column.relationMetadata || baseColumnKind(column) !== undefined);
}

type Convert = (value: unknown) => unknown;

/** Database value → entity value. */
export const READ: Record<BaseColumnKind, Convert> = {
  same: (raw) => raw,
  instant: (raw) => (raw === null ? null : new Date(Number(raw))),
  json: (raw) => (typeof raw === "string" ? JSON.parse(raw) : raw),
  id: (raw) => (raw === null ? null : String(raw)),
};

/** Entity value (not undefined) → database value. */
export const WRITE: Record<BaseColumnKind, Convert> = {
  same: (value) => value,
  instant: (value) => (value instanceof Date ? value.getTime() : value),
  json: (value) => (value === null ? null : JSON.stringify(value)),
  id: (value) => value,
};
