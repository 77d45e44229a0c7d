/**
 * A task class's `static concurrencyLimit`: at most `max` of its tasks running (claimed) at once
 * across every worker, in all or per value of a column. Checked once per class, with a
 * TaskDefinitionError naming the class and the field.
 */
import type { EntityMetadata } from "typeorm";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import type { ConcurrencyLimitOption } from "../../entities/unique";
import { TaskDefinitionError } from "../errors";

/** A checked concurrency limit: `column` is the database name of the `by` column, or null. */
export interface ConcurrencyLimitSpec {
  max: number;
  column: string | null;
}

/** Limits from 1 to this: far beyond any real limit, and within a 32-bit integer. */
const MAX_LIMIT = 1_000_000;

/** The class's checked `static concurrencyLimit`, or null when it has none. */
export function concurrencyLimitOf(cls: { name: string; concurrencyLimit?: unknown }, metadata: EntityMetadata): ConcurrencyLimitSpec | null {
  const option = cls.concurrencyLimit as ConcurrencyLimitOption | undefined | null;
  if (option === undefined || option === null) return null;
  const where = `${cls.name}.concurrencyLimit`;
  const { max, by } = typeof option === "number" ? { max: option, by: undefined } : typeof option === "object" ? option : { max: NaN, by: undefined };
  if (typeof option === "object") {
    for (const field of Object.keys(option)) if (field !== "max" && field !== "by") throw new TaskDefinitionError(`${where} has an unknown field "${field}" (max, by)`);
  }
  if (!Number.isSafeInteger(max) || max < 1 || max > MAX_LIMIT) {
    throw new TaskDefinitionError(`${where} must be a positive integer (at most ${MAX_LIMIT}) or { max, by }, got ${JSON.stringify(option)}`);
  }
  if (by === undefined) return { max, column: null };
  const column = typeof by === "string" ? metadata.columns.find((c) => c.propertyName === by) : undefined;
  if (!column || (by !== "queue" && column.target === BaseTaskEntity)) {
    throw new TaskDefinitionError(`${where}.by names ${JSON.stringify(by)}, which is not a column of ${cls.name} (its own columns, or queue)`);
  }
  return { max, column: column.databaseName };
}
