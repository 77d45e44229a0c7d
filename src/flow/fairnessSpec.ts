/**
 * `static fairness = { by, weights? }`: the class's ready tasks are claimed round-robin across the
 * values of its `by` column (see dialect/fairClaim.ts). Each task carries its value as text in
 * `fair_key`, written at enqueue from the value as the column stores it (the same rule as unique
 * keys: `42`, `"42"` and a bigint read back as `"42"` are one tenant), so the claim reads one
 * index of ormq's own whatever the column is.
 */
import { createHash } from "node:crypto";
import type { EntityMetadata, ObjectLiteral } from "typeorm";
import type { ColumnMetadata } from "typeorm/metadata/ColumnMetadata";
import { TaskDefinitionError } from "../errors";
import { keyKindOf, keyPartOf, type KeyKind } from "./keyValue";
import { byColumn } from "./limitSpec";

/** A class's checked fairness. */
export interface FairnessSpec {
  column: ColumnMetadata;
  kind: KeyKind;
  /** Weight by fair key (as fairKeyText makes it); absent keys weigh 1. */
  weights: ReadonlyMap<string, number>;
}

/** The largest weight: a value served 1,000 times for another's once. */
export const MAX_FAIR_WEIGHT = 1_000;
// eslint-disable-next-line no-control-regex -- NUL is one of the characters to keep out
const UNSTORABLE = /[\u0000\ud800-\udfff]/;
// eslint-disable-next-line no-control-regex -- the same, every occurrence
const UNSTORABLE_ALL = /[\u0000\ud800-\udfff]/g;
/** Longest key kept as it is; longer ones (and any the column could not hold as text) become a head and a digest. */
const MAX_READABLE = 160;

/** The class's checked `static fairness`, or null when it has none. */
export function fairnessOf(cls: { name: string; fairness?: unknown }, metadata: EntityMetadata): FairnessSpec | null {
  const option = cls.fairness;
  if (option === undefined || option === null) return null;
  const where = `${cls.name}.fairness`;
  if (typeof option !== "object" || Array.isArray(option)) throw new TaskDefinitionError(`${where} must be { by, weights? }, got ${JSON.stringify(option)}`);
  for (const field of Object.keys(option)) if (field !== "by" && field !== "weights") throw new TaskDefinitionError(`${where} has an unknown field "${field}" (by, weights)`);
  const { by, weights } = option as { by?: unknown; weights?: unknown };
  const name = byColumn(cls.name, where, by, metadata);
  const column = metadata.columns.find((c) => c.databaseName === name)!;
  const checked = new Map<string, number>();
  if (weights !== undefined) {
    if (weights === null || typeof weights !== "object" || Array.isArray(weights)) throw new TaskDefinitionError(`${where}.weights must be an object of weights by value, got ${JSON.stringify(weights)}`);
    for (const [value, weight] of Object.entries(weights)) {
      if (!Number.isInteger(weight) || weight < 1 || weight > MAX_FAIR_WEIGHT) {
        throw new TaskDefinitionError(`${where}.weights[${JSON.stringify(value)}] must be an integer from 1 to ${MAX_FAIR_WEIGHT}, got ${JSON.stringify(weight)}`);
      }
      checked.set(fairKeyText(value), weight);
    }
  }
  return { column, kind: keyKindOf(column), weights: checked };
}

/** A task's fair key: its `by` value as the column stores it, as text ("" for none). */
export function fairKeyOf(task: ObjectLiteral, spec: FairnessSpec): string {
  const value: unknown = spec.column.getEntityValue(task);
  if (value === undefined || value === null) return "";
  const part = keyPartOf(value, spec.column, spec.kind);
  return fairKeyText(typeof part === "string" ? part : JSON.stringify(part) ?? String(part));
}

/**
 * A key as `fair_key` holds it: as it is when short and plain, else its head and a digest, so any
 * value fits the column (255 characters on every database) and compares equal to itself.
 */
export function fairKeyText(text: string): string {
  // Lone surrogates and NUL cannot be stored as text everywhere (PostgreSQL refuses NUL).
  if (text.length <= MAX_READABLE && !UNSTORABLE.test(text)) return text;
  const head = text.slice(0, 40).replace(UNSTORABLE_ALL, "?");
  return `${head}#${createHash("sha256").update(text).digest("hex")}`;
}

/** Sets the task's `fairKey` for its class (`spec` null: the class has no fairness, and the column stays empty). */
export function setFairKey(task: ObjectLiteral, spec: FairnessSpec | null): void {
  task.fairKey = spec ? fairKeyOf(task, spec) : null;
}
