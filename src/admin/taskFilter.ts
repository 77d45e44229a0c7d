/**
 * Which tasks an admin call is about: status, type, queue, a creation-time range, and the values
 * of a task class's own columns. Checked here against the entity metadata (a column name is the
 * class's property, never SQL from the caller), and applied to a query by the dialect
 * (dialect/taskFilterSql.ts). For retryFailed, deleteTasks, listTasks and the dashboard.
 */
import type { DataSource, EntityMetadata } from "typeorm";
import { TASK_STATUSES, type TaskStatus } from "../../entities/status";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import type { CheckedTaskFilter, ColumnCondition } from "../dialect/taskFilterSql";
import { InvalidOptionError } from "../errors";
import { checkQueue, checkTaskId } from "../validation";
import { ormqFor } from "../client/client";

/** A condition on one of a class's own columns: a value (equal; null for none), or a range. */
export type FieldCondition = string | number | boolean | null | { min?: number | string | Date; max?: number | string | Date };

/** Which tasks. Every condition given must hold. */
export interface TaskFilter {
  /** One task, by id. */
  id?: string | number;
  status?: TaskStatus | readonly TaskStatus[];
  /** The type key (`@ChildEntity("send_email")`). Required for `fields`. */
  type?: string;
  queue?: string;
  /** Created at or after / before these instants. */
  createdFrom?: Date;
  createdBefore?: Date;
  /** Values of the type's own columns, by property name: `{ accountId: "a1" }`, `{ attempts: { min: 2 } }`. */
  fields?: Record<string, FieldCondition>;
}

const MAX_TEXT = 1_000;

/**
 * Text from a caller that a query compares: a type key, a queue, a column's value, a schedule's
 * name. The one check of such text, for every admin call that takes it and so for the dashboard
 * and the CLI, which go through them. Refused with an InvalidOptionError naming `field` and the
 * value when it is not a string of `min` to `max` characters, or holds what the databases cannot
 * compare: a NUL (PostgreSQL's text cannot hold one, so the query would fail) or a lone UTF-16
 * surrogate (the drivers send U+FFFD in its place, so the query would compare another value than
 * the one given).
 */
export function checkFilterText(value: unknown, field: string, { min = 1, max = 255 }: { min?: number; max?: number } = {}): string {
  let problem: string | null = null;
  if (typeof value !== "string") problem = "must be text";
  else if (value.length < min || value.length > max) problem = `must be ${min} to ${max} characters`;
  else if (value.includes("\u0000")) problem = "cannot hold a NUL character (\\u0000)";
  // String.prototype.isWellFormed (node 20); ES2022's lib lacks its type.
  else if (!(value as unknown as { isWellFormed(): boolean }).isWellFormed()) problem = "cannot hold a lone UTF-16 surrogate";
  if (problem === null) return value as string;
  const shown = typeof value === "string" ? JSON.stringify(value) : typeof value === "number" || typeof value === "boolean" || value === null ? String(value) : `a value of type ${typeof value}`;
  throw new InvalidOptionError(`${field} ${problem}, got ${shown.length > 80 ? `${shown.slice(0, 80)}… (${shown.length} characters)` : shown}`);
}

/** A queue name to filter or act on: the text check above, then the rule of queue names (validation.ts). */
export function checkQueueFilter(value: unknown, field: string): string {
  return checkQueue(checkFilterText(value, field, { max: 100 }), field);
}

/**
 * A creation-time bound as a command line or a form gives it: an ISO date or date and time
 * (2026-11-30, 2026-11-30T08:00, 2026-11-30T08:00:00Z). Undefined when empty; `name` names it in
 * the error. The one parser of the CLI's --created-from/--created-before and the dashboard's form.
 */
export function parseFilterDate(raw: string | undefined, name: string): Date | undefined {
  if (raw === undefined || raw === "") return undefined;
  const date = new Date(raw);
  if (!/^\d{4}-\d\d-\d\d/.test(raw) || Number.isNaN(date.getTime())) {
    throw new InvalidOptionError(`${name} takes an ISO date or time (2026-11-30, 2026-11-30T08:00:00Z), got ${JSON.stringify(raw.slice(0, 100))}`);
  }
  return date;
}

/** Checks a filter; `where` names the call in errors. */
export function checkTaskFilter(dataSource: DataSource, filter: TaskFilter, where: string): CheckedTaskFilter {
  if (filter === null || typeof filter !== "object") throw new InvalidOptionError(`${where}: the filter must be an object`);
  const statuses = filter.status === undefined ? [] : Array.isArray(filter.status) ? [...(filter.status as TaskStatus[])] : [filter.status as TaskStatus];
  for (const s of statuses) if (!TASK_STATUSES.includes(s)) throw new InvalidOptionError(`${where}: unknown status ${JSON.stringify(s)} (${TASK_STATUSES.join(", ")})`);
  const type = filter.type === undefined ? undefined : checkFilterText(filter.type, `${where}: type`);
  const queue = filter.queue === undefined ? undefined : checkQueueFilter(filter.queue, `${where}: queue`);
  const instant = (value: unknown, name: string) => {
    if (value === undefined) return undefined;
    if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new InvalidOptionError(`${where}: ${name} must be a valid Date`);
    return value.getTime();
  };
  const columns: ColumnCondition[] = [];
  const fields = filter.fields ?? {};
  if (typeof fields !== "object" || fields === null) throw new InvalidOptionError(`${where}: fields must be an object of column values`);
  const names = Object.keys(fields);
  if (names.length > 0) {
    const known = type === undefined ? undefined : ormqFor(dataSource).registry.byKey.get(type);
    if (!known) throw new InvalidOptionError(`${where}: filtering on a class's columns needs the type of a task class this DataSource knows${type ? ` (not ${JSON.stringify(type)})` : ""}`);
    for (const name of names) {
      const column = ownColumns(known.metadata).find((c) => c.propertyName === name);
      if (!column) throw new InvalidOptionError(`${where}: ${JSON.stringify(name)} is not a column of ${known.cls.name}`);
      columns.push(condition(column.databaseName, kindOf(column.type), fields[name], `${where}: ${known.cls.name}.${name}`));
    }
  }
  const id = filter.id === undefined ? undefined : checkTaskId(filter.id, `${where}: id`);
  return { id, statuses, type, queue, createdFrom: instant(filter.createdFrom, "createdFrom"), createdBefore: instant(filter.createdBefore, "createdBefore"), columns };
}

/** A class's own columns, the ones `fields` may name: not BaseTaskEntity's, the discriminator or relations. */
function ownColumns(metadata: EntityMetadata): EntityMetadata["columns"] {
  return metadata.columns.filter((c) => c.target !== BaseTaskEntity && !c.isDiscriminator && !c.relationMetadata);
}

/** The columns a filter form offers for a class, with the input each needs (JSON columns have none). */
export function filterableColumns(metadata: EntityMetadata): { name: string; kind: "number" | "boolean" | "text" }[] {
  const out: { name: string; kind: "number" | "boolean" | "text" }[] = [];
  for (const column of ownColumns(metadata)) {
    const { kind } = kindOf(column.type);
    if (kind !== "json") out.push({ name: column.propertyName, kind: kind === "integer" ? "number" : kind });
  }
  return out;
}

/** What a column holds, as far as a filter is concerned. */
type Kind = "integer" | "number" | "boolean" | "text" | "json";

/** The largest magnitude of each integer type (PostgreSQL refuses a parameter outside it). */
const INTEGER_LIMITS: Record<string, number> = { int2: 32_767, smallint: 32_767, int: 2_147_483_647, integer: 2_147_483_647, int4: 2_147_483_647, tinyint: 127, mediumint: 8_388_607 };

const NUMBER_TYPES = new Set(["float", "float4", "float8", "double", "double precision", "real", "decimal", "numeric", "dec"]);
const BOOLEAN_TYPES = new Set(["boolean", "bool"]);
const JSON_TYPES = new Set(["json", "jsonb", "simple-json", "simple-array", "simple-enum"]);

function kindOf(type: unknown): { kind: Kind; limit?: number } {
  if (type === Number) return { kind: "number" };
  const name = typeof type === "string" ? type.toLowerCase() : "";
  if (name in INTEGER_LIMITS) return { kind: "integer", limit: INTEGER_LIMITS[name] };
  if (name === "bigint" || name === "int8") return { kind: "integer", limit: Number.MAX_SAFE_INTEGER };
  return { kind: kindOfOther(type, name) };
}

function kindOfOther(type: unknown, name: string): Kind {
  if (type === Boolean) return "boolean";
  if (NUMBER_TYPES.has(name)) return "number";
  if (BOOLEAN_TYPES.has(name)) return "boolean";
  if (JSON_TYPES.has(name)) return "json";
  return "text";
}

/**
 * One column's condition, its value checked against the column's kind: a value the column cannot
 * hold ("abc" for an integer) is the caller's mistake, named here, not a database error later.
 */
function condition(column: string, { kind, limit }: { kind: Kind; limit?: number }, value: FieldCondition, where: string): ColumnCondition {
  if (kind === "json") throw new InvalidOptionError(`${where}: a JSON column cannot be filtered on`);
  const scalar = (v: unknown, what: string): string | number | boolean => {
    if (kind === "number" || kind === "integer") {
      const n = typeof v === "number" ? v : typeof v === "string" && /^\s*-?\d+(\.\d+)?\s*$/.test(v) ? Number(v) : NaN;
      if (!Number.isFinite(n)) throw new InvalidOptionError(`${where}: ${what} must be a number (a numeric column), got ${JSON.stringify(v)}`);
      if (kind === "integer" && !(Number.isInteger(n) && Math.abs(n) <= limit!)) {
        throw new InvalidOptionError(`${where}: ${what} must be an integer from -${limit} to ${limit} (the column's type), got ${JSON.stringify(v)}`);
      }
      return n;
    }
    if (kind === "boolean") {
      if (typeof v === "boolean") return v;
      if (v === "true" || v === "false") return v === "true";
      throw new InvalidOptionError(`${where}: ${what} must be true or false (a boolean column), got ${JSON.stringify(v)}`);
    }
    if (typeof v === "string") return checkFilterText(v, `${where}: ${what}`, { min: 0, max: MAX_TEXT });
    if (typeof v === "number" && Number.isFinite(v)) return String(v);
    if (v instanceof Date && !Number.isNaN(v.getTime())) return v.toISOString();
    throw new InvalidOptionError(`${where}: ${what} must be text of at most ${MAX_TEXT} characters, got ${typeof v}`);
  };
  if (value === null) return { column, op: "null" };
  if (typeof value === "object" && !(value instanceof Date)) {
    const { min, max } = value as { min?: unknown; max?: unknown };
    const extra = Object.keys(value).filter((k) => k !== "min" && k !== "max");
    if (extra.length > 0 || (min === undefined && max === undefined)) throw new InvalidOptionError(`${where}: a range is { min?, max? }`);
    return { column, op: "range", min: min === undefined ? undefined : scalar(min, "min"), max: max === undefined ? undefined : scalar(max, "max") };
  }
  return { column, op: "eq", value: scalar(value, "the value") };
}
