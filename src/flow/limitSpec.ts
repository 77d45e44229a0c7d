/**
 * A task class's `static concurrencyLimit`: at most `max` of its tasks running (claimed) at once
 * across every worker, in all or per value of a column. Checked once per class, with a
 * TaskDefinitionError naming the class and the field.
 */
import type { EntityMetadata } from "typeorm";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import type { ConcurrencyLimitOption, RateLimitOption } from "../../entities/classOptions";
import { TaskDefinitionError } from "../errors";

/** A checked concurrency limit: `column` is the database name of the `by` column, or null. */
export interface ConcurrencyLimitSpec {
  max: number;
  column: string | null;
}

/** A checked rate limit: at most `max` claimed per `perMs` window, per `column` value (database name) or in all. */
export interface RateLimitSpec {
  max: number;
  perMs: number;
  column: string | null;
}

/** Windows from 10 ms to a year. */
export const MIN_RATE_WINDOW_MS = 10;
export const MAX_RATE_WINDOW_MS = 366 * 24 * 3_600_000;

/** Limits from 1 to this: far beyond any real limit, and within a 32-bit integer. */
export const MAX_LIMIT = 1_000_000;

/** A concurrency limit or a rate limit's `max`: an integer from 1 to MAX_LIMIT. */
export function isLimit(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 1 && (value as number) <= MAX_LIMIT;
}

/** A rate limit's window: integer milliseconds from MIN_RATE_WINDOW_MS to MAX_RATE_WINDOW_MS. */
export function isRateWindow(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= MIN_RATE_WINDOW_MS && (value as number) <= MAX_RATE_WINDOW_MS;
}

/** The class's checked `static concurrencyLimit`, or null when it has none. */
export function concurrencyLimitOf(cls: { name: string; concurrencyLimit?: unknown }, metadata: EntityMetadata): ConcurrencyLimitSpec | null {
  const option = cls.concurrencyLimit as ConcurrencyLimitOption | undefined | null;
  if (option === undefined || option === null) return null;
  const where = `${cls.name}.concurrencyLimit`;
  const { max, by } = typeof option === "number" ? { max: option, by: undefined } : typeof option === "object" ? option : { max: NaN, by: undefined };
  if (typeof option === "object") {
    for (const field of Object.keys(option)) if (field !== "max" && field !== "by") throw new TaskDefinitionError(`${where} has an unknown field "${field}" (max, by)`);
  }
  if (!isLimit(max)) {
    throw new TaskDefinitionError(`${where} must be a positive integer (at most ${MAX_LIMIT}) or { max, by }, got ${JSON.stringify(option)}`);
  }
  if (by === undefined) return { max, column: null };
  return { max, column: byColumn(cls.name, where, by, metadata) };
}

/** The class's checked `static rateLimit`, or null when it has none. */
export function rateLimitOf(cls: { name: string; rateLimit?: unknown }, metadata: EntityMetadata): RateLimitSpec | null {
  const option = cls.rateLimit as RateLimitOption | undefined | null;
  if (option === undefined || option === null) return null;
  const where = `${cls.name}.rateLimit`;
  if (typeof option !== "object" || Array.isArray(option)) throw new TaskDefinitionError(`${where} must be { max, perMs, by? }, got ${JSON.stringify(option)}`);
  for (const field of Object.keys(option)) {
    if (!["max", "perMs", "by"].includes(field)) throw new TaskDefinitionError(`${where} has an unknown field "${field}" (max, perMs, by)`);
  }
  const { max, perMs, by } = option;
  if (!isLimit(max)) throw new TaskDefinitionError(`${where}.max must be a positive integer (at most ${MAX_LIMIT}), got ${JSON.stringify(max)}`);
  if (!isRateWindow(perMs)) {
    throw new TaskDefinitionError(`${where}.perMs must be an integer from ${MIN_RATE_WINDOW_MS} to ${MAX_RATE_WINDOW_MS} (milliseconds), got ${JSON.stringify(perMs)}`);
  }
  return { max, perMs, column: by === undefined ? null : byColumn(cls.name, where, by, metadata) };
}

/** The database name of a key's or a limit's `by` column: the class's own columns, or queue. */
export function byColumn(className: string, where: string, by: unknown, metadata: EntityMetadata): string {
  const column = typeof by === "string" ? metadata.columns.find((c) => c.propertyName === by) : undefined;
  if (!column || (by !== "queue" && column.target === BaseTaskEntity)) {
    throw new TaskDefinitionError(`${where}.by names ${JSON.stringify(by)}, which is not a column of ${className} (its own columns, or queue)`);
  }
  return column.databaseName;
}
