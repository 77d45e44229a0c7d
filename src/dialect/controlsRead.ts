/**
 * The flow controls read, for both databases: one statement over ormq_controls and ormq_meta,
 * whose rows are turned into `Controls` here (the worker's read), and the control rows as the
 * admin functions list them (`readControlRows`). Tolerant of odd rows: a concurrency that is not a
 * positive integer is no limit, and a schema version that is not a number is unknown.
 */
import type { EntityManager } from "typeorm";
import { ControlEntity, type ControlScope } from "../../entities/ControlEntity";
import { OrmqConfigurationError } from "../errors";
import type { SqlSpelling } from "./contract";
import type { Controls, Tables } from "./dialect";

/** The statement (no parameters): rows of (scope, name, paused, concurrency, value). */
export function controlsSql(tables: Tables, sql: SqlSpelling): string {
  const key = sql.escape("key");
  return `
    SELECT scope, name, paused, concurrency, rate_max, rate_per_ms, NULL AS value FROM ${tables.controls}
    WHERE paused <> 0 OR concurrency IS NOT NULL OR rate_max IS NOT NULL
    UNION ALL
    SELECT 'meta' AS scope, ${key} AS name, 0 AS paused, NULL AS concurrency, NULL AS rate_max, NULL AS rate_per_ms, value FROM ${tables.meta} WHERE ${key} = 'schema_version'`;
}

/** Controls from the statement's rows. */
export function controlsOf(rows: readonly Record<string, unknown>[]): Controls {
  const pausedQueues: string[] = [];
  const pausedTypes: string[] = [];
  const queueLimits = new Map<string, number>();
  const queueRates = new Map<string, { max: number; perMs: number }>();
  let schemaVersion: number | null = null;
  for (const row of rows) {
    const name = String(row.name);
    if (row.scope === "meta") {
      const version = Number(row.value);
      schemaVersion = Number.isSafeInteger(version) ? version : null;
      continue;
    }
    if (Number(row.paused) !== 0) (row.scope === "type" ? pausedTypes : pausedQueues).push(name);
    const max = Number(row.concurrency);
    if (row.scope === "queue" && row.concurrency !== null && Number.isSafeInteger(max) && max > 0) queueLimits.set(name, max);
    const rateMax = Number(row.rate_max);
    const perMs = Number(row.rate_per_ms);
    if (row.scope === "queue" && row.rate_max !== null && Number.isSafeInteger(rateMax) && rateMax > 0 && Number.isSafeInteger(perMs) && perMs > 0) {
      queueRates.set(name, { max: rateMax, perMs });
    }
  }
  return { pausedQueues, pausedTypes, queueLimits, queueRates, schemaVersion };
}

/** A missing ormq_controls table (PostgreSQL 42P01, SQLite "no such table") as the error that says what to do. */
export function missingControls(err: unknown): unknown {
  return missingTable(err, "ormq_controls", "OrmqFlowControl");
}

/** A missing table of ormq's (PostgreSQL 42P01, SQLite "no such table") as an error naming the migration that makes it. */
export function missingTable(err: unknown, table: string, migration: string): unknown {
  const text = String((err as Error | null)?.message ?? err);
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "42P01" || code === "ER_NO_SUCH_TABLE" || /no such table/.test(text)) {
    return new OrmqConfigurationError(`ormq's tables are older than this ormq (no ${table}): run ormq's migrations (${migration})`, { cause: err });
  }
  return err;
}

/** A control row as read. */
export interface ControlRow {
  scope: ControlScope;
  name: string;
  paused: boolean;
  concurrency: number | null;
  /** At most `max` claimed per `perMs`, or null. */
  rate: { max: number; perMs: number } | null;
  updatedAt: number;
}

/** Every control row that says something (paused, or a limit), by scope and name. */
export async function readControlRows(m: EntityManager): Promise<ControlRow[]> {
  const rows = await m
    .getRepository(ControlEntity)
    .createQueryBuilder("c")
    .where("c.paused <> 0 OR c.concurrency IS NOT NULL OR c.rate_max IS NOT NULL")
    .orderBy("c.scope")
    .addOrderBy("c.name")
    .getMany();
  return rows.map((r) => ({
    scope: r.scope,
    name: r.name,
    paused: Number(r.paused) !== 0,
    concurrency: r.concurrency,
    rate: r.rateMax === null || r.ratePerMs === null ? null : { max: Number(r.rateMax), perMs: Number(r.ratePerMs) },
    updatedAt: Number(r.updatedAt),
  }));
}
