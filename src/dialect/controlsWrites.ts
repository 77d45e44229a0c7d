/**
 * The writes and reads of `ormq_controls` on the application's connection, through TypeORM's
 * query builder (one statement for both databases): an upsert per change, keyed by scope and name.
 */
import type { EntityManager } from "typeorm";
import { ControlEntity, type ControlScope } from "../../entities/ControlEntity";

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

/** Sets fields of one control row, creating it when missing. */
export async function upsertControl(
  m: EntityManager,
  scope: ControlScope,
  name: string,
  fields: { paused?: boolean; concurrency?: number | null; rate?: { max: number; perMs: number } | null },
  now: number,
): Promise<void> {
  const values: Partial<Record<keyof ControlEntity, unknown>> = { scope, name, updatedAt: String(now) };
  if (fields.paused !== undefined) values.paused = fields.paused ? 1 : 0;
  if (fields.concurrency !== undefined) values.concurrency = fields.concurrency;
  if (fields.rate !== undefined) {
    values.rateMax = fields.rate?.max ?? null;
    values.ratePerMs = fields.rate === null ? null : String(fields.rate.perMs);
  }
  const update = [
    "updated_at",
    ...(fields.paused !== undefined ? ["paused"] : []),
    ...(fields.concurrency !== undefined ? ["concurrency"] : []),
    ...(fields.rate !== undefined ? ["rate_max", "rate_per_ms"] : []),
  ];
  await m
    .createQueryBuilder()
    .insert()
    .into(ControlEntity)
    .values({ paused: 0, concurrency: null, rateMax: null, ratePerMs: null, ...values } as never)
    .orUpdate(update, ["scope", "name"])
    .updateEntity(false)
    .execute();
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
