/**
 * Checks the fields of `ormq submit --data` against the task class's columns before anything is
 * written: JSON gives strings, numbers, booleans, null, arrays and objects, and a value of the
 * wrong kind reaches the driver as something it cannot bind ("Too few parameter values" for an
 * object on SQLite) or that the database refuses (text in an integer column on PostgreSQL).
 *
 * The rules follow the column's declared type, the same on both databases so that a command that
 * works on one works on the other: an `integer` holds 32 bits, as on PostgreSQL (SQLite would take
 * 64). Text must be storable by PostgreSQL (no NUL, no lone surrogate) and fit a declared length.
 */
import type { ColumnMetadata } from "typeorm/metadata/ColumnMetadata";
import { InvalidOptionError } from "../errors";

type Rule = (value: unknown, column: ColumnMetadata) => string | null;

const STRING_TYPES = [
  "varchar", "character varying", "varying character", "nvarchar", "national varchar", "char", "character", "nchar",
  "native character", "national char", "text", "tinytext", "mediumtext", "longtext", "ntext", "citext", "clob", "string", "uuid",
];
const INTEGER_BITS: Record<string, number> = {
  tinyint: 8, smallint: 16, int2: 16, mediumint: 24, int: 32, integer: 32, int4: 32, bigint: 64, int8: 64, int64: 64,
  "unsigned big int": 64, "big int": 64,
};
const FLOAT_TYPES = ["float", "float4", "float8", "double", "double precision", "real", "number", "decimal", "numeric", "dec", "fixed", "money"];
const BOOLEAN_TYPES = ["boolean", "bool"];
const JSON_TYPES = ["json", "jsonb", "simple-json"];
/** Instants: an ISO 8601 string is accepted and converted to a Date (what TypeORM writes for these). */
const TIMESTAMP_TYPES = ["timestamp", "timestamptz", "timestamp with time zone", "timestamp without time zone", "datetime", "datetime2", "datetimeoffset", "smalldatetime"];

/**
 * Checks each field of `data` against its column (`columns` by property name) and returns the
 * values to assign: the same values, except ISO strings for timestamp columns, which become
 * Dates. Throws one InvalidOptionError naming the field, the column's type and the value's type.
 */
export function checkTaskData(typeKey: string, data: Record<string, unknown>, columns: ColumnMetadata[]): Record<string, unknown> {
  const byProperty = new Map(columns.map((c) => [c.propertyName, c]));
  const checked: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(data)) {
    const column = byProperty.get(field);
    if (!column) {
      checked[field] = value; // not a column (a relation, say): TypeORM decides
      continue;
    }
    const type = typeName(column);
    const fail = (problem: string): never => {
      throw new InvalidOptionError(`--data field ${JSON.stringify(field)} of ${typeKey} (column type ${type}): ${problem}, got ${describe(value)}`);
    };
    if (value === null) {
      if (!column.isNullable) fail("it is not nullable");
      checked[field] = null;
      continue;
    }
    // A transformer decides what reaches the database; its input is the application's business.
    if (column.transformer) {
      checked[field] = value;
      continue;
    }
    // simple-json escapes NUL and lone surrogates in its text; every other column stores them raw.
    const text = type === "simple-json" ? null : storableProblem(value);
    if (text) fail(text);
    if (TIMESTAMP_TYPES.includes(type)) {
      const date = typeof value === "string" && /^\d{4}-\d{2}-\d{2}/.test(value) ? new Date(value) : null;
      if (!date || Number.isNaN(date.getTime())) fail("it takes an ISO 8601 date and time such as 2030-01-31T12:00:00Z");
      checked[field] = date;
      continue;
    }
    const problem = ruleFor(column, type)(value, column);
    if (problem) fail(problem);
    checked[field] = value;
  }
  return checked;
}

/**
 * The first own column that the task leaves empty although it must not be: not nullable, no
 * default, not filled by TypeORM. (A field initialiser in the class counts as filling it.)
 */
export function missingRequired(task: object, columns: ColumnMetadata[]): ColumnMetadata | undefined {
  return columns.find((c) => {
    if (c.isNullable || c.default !== undefined || c.isGenerated || c.isCreateDate || c.isUpdateDate || c.isDeleteDate || c.isVersion) return false;
    if (c.relationMetadata || c.isVirtual) return false;
    const value = c.getEntityValue(task);
    return value === undefined || value === null;
  });
}

/** The column's declared type, lower case (a constructor type: its TypeORM equivalent). */
function typeName(column: ColumnMetadata): string {
  const t = column.type as unknown;
  if (t === String) return "varchar";
  if (t === Number) return "integer";
  if (t === Boolean) return "boolean";
  if (t === Date) return "timestamp";
  if (t === Object) return "simple-json";
  return typeof t === "string" ? t.toLowerCase() : String((t as { name?: string })?.name ?? t).toLowerCase();
}

function ruleFor(column: ColumnMetadata, type: string): Rule {
  if (column.isArray || type === "simple-array") return arrayOf(column.isArray ? scalarRule(column, type) : simpleArrayItem);
  return scalarRule(column, type);
}

function scalarRule(column: ColumnMetadata, type: string): Rule {
  if (JSON_TYPES.includes(type)) return () => null;
  if (column.enum || type === "enum" || type === "simple-enum") return enumRule;
  if (STRING_TYPES.includes(type)) return stringRule;
  if (type in INTEGER_BITS) return integerRule(INTEGER_BITS[type]);
  if (FLOAT_TYPES.includes(type)) return numberRule;
  if (BOOLEAN_TYPES.includes(type)) return (v) => (typeof v === "boolean" ? null : "it takes true or false");
  if (type === "date") return (v) => (typeof v === "string" && /^\d{4}-\d{2}-\d{2}$/.test(v) && !Number.isNaN(new Date(v).getTime()) ? null : "it takes a date such as 2030-01-31");
  if (type.startsWith("time")) return (v) => (typeof v === "string" && /^\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}(:?\d{2})?|Z)?$/.test(v) ? null : "it takes a time such as 12:30:00");
  // Any other type (binary, geometry, network, …): a scalar, which the database checks.
  return (v) => (typeof v === "object" ? "it takes a single value, not an object or array" : null);
}

const stringRule: Rule = (v, column) => {
  if (typeof v !== "string") return "it takes a string";
  const length = Number(column.length);
  // Characters as PostgreSQL counts them (code points), which it enforces and SQLite does not.
  if (length > 0 && Array.from(v).length > length) return `it takes at most ${length} characters, this has ${Array.from(v).length}`;
  if (column.type === "uuid" && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v)) return "it takes a UUID";
  return null;
};

const numberRule: Rule = (v) => (typeof v === "number" && Number.isFinite(v) ? null : "it takes a finite number");

function integerRule(bits: number): Rule {
  const max = 2n ** BigInt(bits - 1) - 1n;
  return (v) => {
    // A 64-bit integer can be given as a decimal string: a JSON number loses precision beyond 2^53.
    const exact = typeof v === "number" ? (Number.isSafeInteger(v) ? BigInt(v) : null) : bits === 64 && typeof v === "string" && /^-?\d{1,19}$/.test(v) ? BigInt(v) : null;
    if (exact === null || exact > max || exact < -max - 1n) {
      return `it takes an integer from ${-max - 1n} to ${max}${bits === 64 ? " (beyond 2^53 as a decimal string)" : ""}`;
    }
    return null;
  };
}

const enumRule: Rule = (v, column) => {
  const values = (column.enum ?? []) as unknown[];
  return values.some((e) => e === v || String(e) === v) ? null : `it takes one of ${values.map((e) => JSON.stringify(e)).join(", ")}`;
};

/** simple-array joins its items with commas: an item holding a comma would come back as two. */
const simpleArrayItem: Rule = (v) =>
  (typeof v === "string" && !v.includes(",")) || (typeof v === "number" && Number.isFinite(v)) ? null : "it takes strings without commas, or numbers";

function arrayOf(item: Rule): Rule {
  return (v, column) => {
    if (!Array.isArray(v)) return "it takes an array";
    for (const element of v) {
      const problem = element === null ? null : item(element, column);
      if (problem) return `each item: ${problem}`;
    }
    return null;
  };
}

/** Text PostgreSQL refuses, anywhere in the value: NUL (text and jsonb) and lone surrogates (jsonb, and not UTF-8). */
function storableProblem(value: unknown, depth = 0): string | null {
  if (typeof value === "string") {
    if (value.includes("\u0000")) return "text cannot hold a NUL character (\\u0000)";
    if (!(value as unknown as { isWellFormed(): boolean }).isWellFormed()) return "text cannot hold a lone UTF-16 surrogate";
    return null;
  }
  if (typeof value !== "object" || value === null || depth > 100) return null;
  for (const [key, item] of Object.entries(value)) {
    const problem = storableProblem(key, depth + 1) ?? storableProblem(item, depth + 1);
    if (problem) return problem;
  }
  return null;
}

/** The value's JSON type, and the value when short. */
function describe(value: unknown): string {
  const kind = value === null ? "null" : Array.isArray(value) ? "an array" : typeof value === "object" ? "an object" : `a ${typeof value}`;
  if (typeof value === "object" && value !== null) return kind;
  const text = JSON.stringify(value);
  return kind === "null" ? "null" : text.length <= 40 ? `${kind} (${text})` : `${kind} (${text.slice(0, 40)}…)`;
}
