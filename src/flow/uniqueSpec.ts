/**
 * A task class's `static unique`: which columns make a task's key, what a duplicate does, and
 * the optional fixed window. Checked once per class (TaskDefinitionError naming the class and the
 * field), and turned into the two key columns each task carries (`unique_key`, `unique_window`),
 * which the database's unique indexes and guard trigger enforce.
 */
import { createHash } from "node:crypto";
import ms from "ms";
import type { EntityMetadata, ObjectLiteral } from "typeorm";
import type { OnConflict, UniqueOption } from "../../entities/classOptions";

export type { OnConflict, UniqueOption };
import { TaskDefinitionError, TaskValidationError } from "../errors";
import type { ColumnMetadata } from "typeorm/metadata/ColumnMetadata";
import { keyKindOf, keyPartOf, type KeyKind } from "./keyValue";
import { byColumn } from "./limitSpec";

/** A checked `static unique`. */
export interface UniqueSpec {
  /** The key's columns: property, database name, metadata, and how their values compare (see keyValue.ts). */
  by: readonly { property: string; column: string; metadata: ColumnMetadata; kind: KeyKind }[];
  onConflict: OnConflict;
  withinMs: number | null;
}

/** A task's key columns. */
export interface UniqueKeys {
  key: string;
  window: string | null;
  /** The key's values by property, for messages. */
  values: Record<string, unknown>;
}

const ON_CONFLICT = new Set<OnConflict>(["skip", "replace", "error"]);
/** Windows from one second to a year: a window shorter than the clock's grain, or unbounded, is a mistake. */
const MIN_WINDOW_MS = 1_000;
const MAX_WINDOW_MS = 366 * 24 * 3_600_000;
/** Keys longer than this are stored as a digest: the index entry stays small and bounded. */
const MAX_READABLE_KEY = 200;

/** The class's checked `static unique`, or null when it has none. */
export function uniqueSpecOf(cls: { name: string; unique?: unknown; keepSucceeded?: boolean }, metadata: EntityMetadata): UniqueSpec | null {
  const option = cls.unique;
  if (option === undefined || option === null) return null;
  const where = `${cls.name}.unique`;
  if (typeof option !== "object" || Array.isArray(option)) {
    throw new TaskDefinitionError(`${where} must be an object such as { by: ["accountId"] }, got ${describe(option)}`);
  }
  const { by, onConflict = "skip", within } = option as Partial<UniqueOption> & Record<string, unknown>;
  for (const field of Object.keys(option)) {
    if (!["by", "onConflict", "within"].includes(field)) throw new TaskDefinitionError(`${where} has an unknown field "${field}" (by, onConflict, within)`);
  }
  if (!Array.isArray(by) || by.length === 0 || by.length > 8) {
    throw new TaskDefinitionError(`${where}.by must list 1 to 8 property names, got ${describe(by)}`);
  }
  const columns = by.map((property: unknown) => {
    if (typeof property !== "string") throw new TaskDefinitionError(`${where}.by must list property names, got ${describe(property)}`);
    const column = byColumn(cls.name, where, property, metadata);
    const columnMetadata = metadata.columns.find((c) => c.propertyName === property)!;
    return { property, column, metadata: columnMetadata, kind: keyKindOf(columnMetadata) };
  });
  if (new Set(by).size !== by.length) throw new TaskDefinitionError(`${where}.by names a property twice`);
  if (!isOnConflict(onConflict)) {
    throw new TaskDefinitionError(`${where}.onConflict must be "skip", "replace" or "error", got ${describe(onConflict)}`);
  }
  let withinMs: number | null = null;
  if (within !== undefined) {
    withinMs = typeof within === "number" ? within : typeof within === "string" && within.trim() !== "" ? (ms(within as ms.StringValue)) ?? NaN : NaN;
    if (!Number.isInteger(withinMs) || withinMs < MIN_WINDOW_MS || withinMs > MAX_WINDOW_MS) {
      throw new TaskDefinitionError(`${where}.within must be a duration from 1s to 366d (such as "1h", or milliseconds), got ${describe(within)}`);
    }
    if (cls.keepSucceeded === false) {
      // The window is held by the rows of its tasks, finished or not: a success that deletes its
      // row would open the window again at once.
      throw new TaskDefinitionError(`${where}.within needs the succeeded tasks' rows, which ${cls.name}.keepSucceeded = false deletes: keep them, or drop within`);
    }
  }
  return { by: columns, onConflict: onConflict, withinMs };
}

/**
 * A task's key columns at enqueue, `now` being the database's clock (the window is the one the
 * enqueue falls in). A key value that is null or unset is refused: unique indexes hold NULLs
 * distinct, so such a task would never be a duplicate.
 */
export function uniqueKeysOf(spec: UniqueSpec, type: string, task: ObjectLiteral, className: string, now: number): UniqueKeys {
  const values: Record<string, unknown> = {};
  const parts: unknown[] = [];
  for (const { property, metadata, kind } of spec.by) {
    const value = task[property];
    if (value === null || value === undefined) {
      throw new TaskValidationError(type, [
        { property, value, constraints: { uniqueKey: `${className}.${property} is part of the task's unique key and must be set` } },
      ]);
    }
    values[property] = value;
    // The value as the column stores it: 42, "42" and 42n are one key in an integer column.
    parts.push(keyPartOf(value, metadata, kind));
  }
  const text = `${type}:${JSON.stringify(parts)}`;
  // Long keys (a long text column) are stored as a digest of the same text.
  const key = text.length <= MAX_READABLE_KEY ? text : `${type}:#${createHash("sha256").update(text).digest("hex")}`;
  const window = spec.withinMs === null ? null : `${key}@${Math.floor(now / spec.withinMs) * spec.withinMs}`;
  return { key, window, values };
}

function describe(value: unknown): string {
  try {
    return value === undefined ? "undefined" : JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function isOnConflict(value: unknown): value is OnConflict {
  return ON_CONFLICT.has(value as OnConflict);
}
