/**
 * The writes of `ormq_controls` on the application's connection, through TypeORM's query builder
 * (one statement for both databases): an upsert per change, keyed by scope and name. The reads
 * are in controlsRead.ts.
 */
import type { EntityManager } from "typeorm";
import { ControlEntity, type ControlScope } from "../../entities/ControlEntity";


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
