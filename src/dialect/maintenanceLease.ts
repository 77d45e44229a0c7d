/**
 * The lease of a maintenance job (the rescue, the prune, the scheduler): one row of ormq_meta per
 * job, `lease:<job>`, whose value is `<until>:<holder>` (until in epoch ms by the database's
 * clock). Whoever holds an unexpired lease runs the job; the others skip it until the lease runs
 * out (its holder died, froze or lost the database) or is released (its holder stopped). Every
 * change is a compare-and-set on the value read, its row count checked: two workers that both see
 * the lease free cannot both take it. A value that is not `<number>:<text>` (written by hand, cut)
 * counts as expired and is taken over.
 */
import { createHash } from "node:crypto";
import type { EntityManager } from "typeorm";
import { MetaEntity } from "../../entities/ControlEntity";

/** A worker's token in a lease: a hash of its id, so that any id fits ormq_meta's value. */
export function leaseHolder(workerId: string): string {
  return createHash("sha256").update(workerId).digest("hex").slice(0, 32);
}

/**
 * Takes or renews `job`'s lease for `holder` until `now + leaseMs`, if it is free, expired or
 * already `holder`'s. Resolves with whether `holder` holds it now.
 */
export async function holdLease(m: EntityManager, job: string, holder: string, now: number, leaseMs: number): Promise<boolean> {
  const key = `lease:${job}`;
  const value = `${now + leaseMs}:${holder}`;
  const repository = m.getRepository(MetaEntity);
  const current = await repository.findOne({ where: { key } });
  if (!current) {
    // Two takers at once: one insert goes in, the other is ignored; the read after says who won.
    await repository.createQueryBuilder().insert().into(MetaEntity).values({ key, value }).orIgnore().execute();
    const after = await repository.findOne({ where: { key } });
    return after?.value === value;
  }
  const seen = parseLease(current.value);
  if (seen && seen.holder !== holder && seen.until > now) return false;
  const result = await repository
    .createQueryBuilder()
    .update(MetaEntity)
    .set({ value })
    .where({ key, value: current.value }) // object form: each driver quotes `key` its own way
    .execute();
  return result.affected === 1;
}

/** Gives up `job`'s lease if `holder` has it, so that another worker takes it at once. */
export async function releaseLease(m: EntityManager, job: string, holder: string): Promise<void> {
  const key = `lease:${job}`;
  const current = await m.getRepository(MetaEntity).findOne({ where: { key } });
  if (!current || parseLease(current.value)?.holder !== holder) return;
  await m
    .createQueryBuilder()
    .update(MetaEntity)
    .set({ value: `0:${holder}` })
    .where({ key, value: current.value })
    .execute();
}

/** A lease's value read back; null when it is not `<until>:<holder>`. */
export function parseLease(value: unknown): { until: number; holder: string } | null {
  if (typeof value !== "string") return null;
  const colon = value.indexOf(":");
  if (colon <= 0) return null;
  const until = Number(value.slice(0, colon));
  return Number.isSafeInteger(until) ? { until, holder: value.slice(colon + 1) } : null;
}
