/**
 * A unique key's part as the column stores it, not as JavaScript holds it: `42`, `"42"` and the
 * `"42"` node-postgres reads back for a bigint are one stored value, so they must be one key.
 * Each part is first prepared as TypeORM's driver prepares it for the column (its transformer, and
 * the driver's own conversions: on SQLite a boolean column stores `value === true ? 1 : 0`), then
 * normalised by the column's type: integers to a number (a decimal string past 2^53), decimals and floats to their
 * shortest form, booleans to true/false, instants to an ISO string, dates to YYYY-MM-DD, text to a
 * string. A value the column could not store as such (`"abc"` for an integer) is kept as it is:
 * the insert refuses it, not the key.
 *
 * Concurrency and rate keys are built by the database from the stored column (see
 * dialect/limitedClaim.ts), so they follow the same rule by construction.
 */
import type { ColumnMetadata } from "typeorm/metadata/ColumnMetadata";
import { transformTo } from "../dialect/libraryInternals";

/** How a column's values compare once stored. */
export type KeyKind = "integer" | "decimal" | "boolean" | "instant" | "day" | "uuid" | "json" | "text";

const INTEGER = new Set(["int", "int2", "int4", "int8", "integer", "smallint", "mediumint", "tinyint", "bigint", "smallserial", "serial", "bigserial", "unsigned big int"]);
const DECIMAL = new Set(["decimal", "numeric", "float", "float4", "float8", "double", "double precision", "real", "number", "money", "dec", "fixed"]);
const BOOLEAN = new Set(["boolean", "bool", "bit"]);
const INSTANT = new Set(["timestamp", "timestamptz", "timestamp with time zone", "timestamp without time zone", "datetime", "datetime2", "datetimeoffset", "smalldatetime"]);
const JSON_TYPES = new Set(["json", "jsonb", "simple-json"]);

/** The kind of a column's values, from its declared type (a name or a constructor). */
export function keyKindOf(column: ColumnMetadata): KeyKind {
  const declared = column.type;
  if (declared === Number) return "decimal";
  if (declared === Boolean) return "boolean";
  if (declared === Date) return "instant";
  const name = typeof declared === "string" ? declared.toLowerCase() : "";
  if (INTEGER.has(name)) return "integer";
  if (DECIMAL.has(name)) return "decimal";
  if (BOOLEAN.has(name)) return "boolean";
  if (INSTANT.has(name)) return "instant";
  if (name === "date") return "day";
  if (name === "uuid") return "uuid";
  if (JSON_TYPES.has(name)) return "json";
  return "text";
}

/** The part of a key for `value` (not null) in `column` of `kind`: equal for values the column stores alike. */
export function keyPartOf(value: unknown, column: ColumnMetadata, kind: KeyKind): unknown {
  // An instant is read from the entity's value: SQLite's driver writes it as a UTC text without a
  // zone, which would read back as local time here.
  const stored: unknown =
    kind === "instant"
      ? column.transformer
        ? transformTo(column.transformer, value)
        : value
      : column.entityMetadata.connection.driver.preparePersistentValue(value, column);
  switch (kind) {
    case "integer":
      return integerPart(stored);
    case "decimal":
      return decimalPart(stored);
    case "boolean":
      return booleanPart(stored);
    case "instant":
      return instantPart(stored);
    case "day":
      return typeof stored === "string" && /^\d{4}-\d\d-\d\d/.test(stored) ? stored.slice(0, 10) : plain(stored);
    case "uuid":
      return typeof stored === "string" ? stored.toLowerCase() : plain(stored);
    case "json":
      return jsonPart(stored);
    case "text":
      return typeof stored === "number" || typeof stored === "bigint" || typeof stored === "boolean" ? String(stored) : plain(stored);
  }
}

function integerPart(value: unknown): unknown {
  let n: bigint | null = null;
  if (typeof value === "bigint") n = value;
  else if (typeof value === "number" && Number.isInteger(value)) n = BigInt(value);
  else if (typeof value === "string" && /^\s*[+-]?\d{1,40}\s*$/.test(value)) n = BigInt(value.trim());
  if (n === null) return plain(value);
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
}

/** A plain decimal's shortest text: no sign on zero, no leading zeros, no trailing fraction zeros. */
const DECIMAL_TEXT = /^\s*([+-]?)(\d*)(?:\.(\d*))?\s*$/;

function decimalPart(value: unknown): unknown {
  if (typeof value === "bigint") return integerPart(value);
  if (typeof value === "number") return Number.isFinite(value) ? (Object.is(value, -0) ? 0 : value) : String(value);
  if (typeof value !== "string") return plain(value);
  const match = DECIMAL_TEXT.exec(value);
  if (!match || (match[2] === "" && !match[3])) {
    const n = value.trim() === "" ? NaN : Number(value); // exponents ("1e3") and the like
    return Number.isFinite(n) ? n : value;
  }
  const whole = match[2].replace(/^0+(?=\d)/, "") || "0";
  const fraction = (match[3] ?? "").replace(/0+$/, "");
  const text = fraction ? `${whole}.${fraction}` : whole;
  if (/^0(\.0*)?$/.test(text)) return 0;
  const signed = match[1] === "-" ? `-${text}` : text;
  // The shortest form as a number when that is exact, so 1.5 and "1.50" meet; else the text.
  return String(Number(signed)) === signed ? Number(signed) : signed;
}

function booleanPart(value: unknown): unknown {
  if (typeof value === "boolean") return value;
  if (value === 1 || value === 0) return value === 1;
  if (typeof value === "string") {
    const text = value.trim().toLowerCase();
    if (["1", "t", "true", "y", "yes", "on"].includes(text)) return true;
    if (["0", "f", "false", "n", "no", "off"].includes(text)) return false;
  }
  return plain(value);
}

function instantPart(value: unknown): unknown {
  const date = value instanceof Date ? value : typeof value === "string" || typeof value === "number" ? new Date(value) : null;
  return date && Number.isFinite(date.getTime()) ? date.toISOString() : plain(value);
}

function jsonPart(value: unknown): unknown {
  if (typeof value !== "string") return plain(value);
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return value;
  }
}

/** Any other value, in a form JSON can hold. */
function plain(value: unknown): unknown {
  if (value instanceof Date) return Number.isFinite(value.getTime()) ? value.toISOString() : String(value);
  return typeof value === "bigint" ? String(value) : value;
}
