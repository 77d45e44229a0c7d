/**
 * The claim of a class with `static fairness` (see flow/fairnessSpec.ts), for every database:
 * round-robin across the share keys (`fair_key`, one per tenant), weighted, within priority.
 *
 * A FIFO claim reads the head of the whole queue, which a tenant that queued 100,000 tasks first
 * fills. This one reads the head of each key instead, in two statements:
 * 1. the keys that have pending tasks, at most `keysPerClaim` of them, from just after the key the
 *    worker's previous claim ended at (a loose index scan: one probe of the fair index per key,
 *    however many tasks each has), wrapping around to the first key when it reaches the end;
 * 2. the first few ready tasks of each of those keys (one index range each), ranked within their
 *    key, and taken in rounds: every key's first task, then every key's second, … (a key of
 *    weight 3 takes three places a round), highest priority first, at most the claim's limit.
 * Each worker keeps its own place in the keys, so across workers every key is visited in turn and
 * no shared row is written. Fair over the keys a claim reads, not exact: two workers may serve one
 * key in the same round, and a key's tasks that are not due yet wait their turn without a place.
 */
import type { SqlParts } from "./contract";
import type { ClaimRequest, FairClaim } from "./dialect";
import { resumeAfterSql, type ClaimPosition } from "./watermark";
import { readyWhere } from "./lifecycle";

/** Most keys one claim reads: a bound on its work (the keys past it are reached by the next claims). */
export const MAX_KEYS_PER_CLAIM = 100;
/** A round's length in tier units: a key of weight w takes a place every STEP / w. */
const STEP = 1_000;

/** How many keys a claim of `limit` tasks reads: one per task, up to MAX_KEYS_PER_CLAIM. */
export function keysPerClaim(limit: number): number {
  return Math.max(1, Math.min(MAX_KEYS_PER_CLAIM, limit));
}

/**
 * Statement 1: up to `count` keys with pending tasks of `type`, in key order, after `after` (or
 * from the first key). `index`: the index hint where a database needs one ("" elsewhere).
 */
export function fairKeysSql(tasks: string, type: string, after: string | null, count: number, sql: SqlParts, index = ""): string {
  const firstType = sql.param(type, "text");
  const first = after === null ? `fair_key >= ''` : `fair_key > ${sql.param(after, "text")}`;
  const nextType = sql.param(type, "text");
  const most = sql.param(count, "int");
  // The first probe is written before the recursive one: parameters are bound in text order.
  return `
    WITH RECURSIVE fair_keys(fk, n) AS (
      SELECT (SELECT MIN(fair_key) FROM ${tasks} ${index} WHERE type = ${firstType} AND status = 'pending' AND ${first}), 1
      UNION ALL
      SELECT (SELECT MIN(fair_key) FROM ${tasks} ${index} WHERE type = ${nextType} AND status = 'pending' AND fair_key > fair_keys.fk), n + 1
      FROM fair_keys WHERE fair_keys.fk IS NOT NULL AND n < ${most}
    )
    SELECT fk FROM fair_keys WHERE fk IS NOT NULL`;
}

/**
 * Statement 2: the ids to claim with their place in the claim (`SELECT id, ord …`, ordered by
 * ord), at most `request.limit`, from the heads of `keys`, in rounds across the keys (see the
 * module's comment). The claimed tasks start in that order: a claim's batch sorted by due time
 * would start one tenant's tasks before the next's. `now`: the database's now as SQL.
 */
export function fairPickSql(tasks: string, now: () => string, request: ClaimRequest, fair: FairClaim, keys: readonly string[], sql: SqlParts, index = ""): string {
  // The rounds' order is written before the heads it reads: its parameters are pushed first.
  const rounds = fairRoundSql(fair, keys, sql);
  const heads = fairHeadsSql(tasks, now, request, fair, keys, sql, index);
  const most = sql.param(request.limit, "int");
  return `
    SELECT id, ord FROM (
      SELECT id, row_number() OVER (ORDER BY priority DESC, fround, fplace, fair_key, run_at, id) AS ord FROM (
        SELECT id, priority, run_at, fair_key, ${rounds} FROM (${heads}) heads
      ) ranked
    ) rounds
    WHERE ord <= ${most}
    ORDER BY ord`;
}

/**
 * Each task's place in the rounds, as two columns over rows of `keys`' heads: `fround`, its round
 * (a task ranked rn within its key, from 1, comes at (rn - 1) × the key's step, so a key of weight
 * w takes w places a round), and `fplace`, its key's turn within the round: from `keys[0]` on in
 * key order, then the keys before it (the worker's place in the keys moves on with each claim, see
 * FairCursors.served, so a claim that takes fewer tasks than there are keys starts where the last
 * stopped). Order by `fround, fplace, fair_key`.
 */
export function fairRoundSql(fair: FairClaim, keys: readonly string[], sql: SqlParts): string {
  const weighted = keys.filter((k) => weightOf(fair, k) !== 1);
  const step =
    weighted.length === 0
      ? String(STEP)
      : `CASE fair_key ${weighted.map((k) => `WHEN ${sql.param(k, "text")} THEN ${sql.param(Math.max(1, Math.round(STEP / weightOf(fair, k))), "int")}`).join(" ")} ELSE ${STEP} END`;
  const first = sql.param(keys[0] ?? "", "text");
  return `(row_number() OVER (PARTITION BY fair_key ORDER BY priority DESC, run_at, id) - 1) * ${step} AS fround,
        CASE WHEN fair_key >= ${first} THEN 0 ELSE 1 END AS fplace`;
}

/**
 * The first ready tasks of each of `keys` (one index range each, `UNION ALL`), each key's share of
 * the claim and one more: a bound on what is read, not on what is taken. `columns` and `where`
 * (called once per key, in text order) add to each branch's select list and conditions: the
 * limited claim's keys and its limited-only filter.
 */
export function fairHeadsSql(
  tasks: string,
  now: () => string,
  request: ClaimRequest,
  fair: FairClaim,
  keys: readonly string[],
  sql: SqlParts,
  index = "",
  columns: () => string = () => "",
  where: () => string = () => "",
): string {
  const total = keys.reduce((sum, k) => sum + weightOf(fair, k), 0);
  const branches = keys.map((key, i) => {
    const quota = Math.min(request.limit, Math.ceil((request.limit * weightOf(fair, key)) / total) + 1);
    // Written left to right: positional parameters are bound in the order they were pushed.
    let text = `SELECT * FROM (
        SELECT id, priority, run_at, fair_key, queue, type${columns()} FROM ${tasks} ${index}
        WHERE type = ${sql.param(fair.type, "text")} AND fair_key = ${sql.param(key, "text")} AND ${readyWhere(now())}`;
    if (request.queues) text += ` AND ${sql.inList("queue", request.queues)}`;
    if (request.excludedQueues?.length) text += ` AND ${sql.notInList("queue", request.excludedQueues)}`;
    text += where();
    return `${text}
        ORDER BY priority DESC, run_at, id
        LIMIT ${sql.param(quota, "int")}
      ) b${i}`;
  });
  return branches.join(" UNION ALL ");
}

/** `rows` in the order of `ids` (a fair claim's pick order); rows of ids not in it last. */
export function inPickOrder<T extends Record<string, unknown>>(rows: T[], ids: readonly string[]): T[] {
  const place = new Map(ids.map((id, i) => [id, i]));
  return rows.sort((a, b) => (place.get(String(a.id)) ?? ids.length) - (place.get(String(b.id)) ?? ids.length));
}

/**
 * Statement 2 when one key has pending tasks (a lone tenant, or the one left with a backlog): its
 * head in claim order, `SELECT id …`, as a FIFO claim's pick with the key in it (no rounds to
 * take, and nothing to sort: the index is in that order). `lock`: the database's row lock;
 * `select`: what it reads (MySQL reads the claimed columns here, of the table aliased as `index`).
 */
export function fairHeadSql(tasks: string, now: () => string, request: ClaimRequest, fair: FairClaim, key: string, sql: SqlParts, index = "", lock = "", select = "id", after: ClaimPosition | null = null): string {
  let text = `SELECT ${select} FROM ${tasks} ${index}
      WHERE type = ${sql.param(fair.type, "text")} AND fair_key = ${sql.param(key, "text")} AND ${readyWhere(now())}`;
  // From just after the key's last claimed position (see ClaimWatermark), where it may.
  if (after) text += ` AND ${resumeAfterSql(after, sql)}`;
  if (request.queues) text += ` AND ${sql.inList("queue", request.queues)}`;
  if (request.excludedQueues?.length) text += ` AND ${sql.notInList("queue", request.excludedQueues)}`;
  return `${text}
      ORDER BY priority DESC, run_at, id
      LIMIT ${sql.param(request.limit, "int")} ${lock}`;
}

function weightOf(fair: FairClaim, key: string): number {
  return fair.weights.get(key) ?? 1;
}

/**
 * How long a claim may reuse the keys an earlier one read, when that read found all of them:
 * reading them is a statement (a round trip on a server) per claim, the drain's largest cost over
 * a FIFO claim; a tenant whose first task arrives meanwhile waits this long more for its turn.
 */
export const KEYS_REUSE_MS = 100;

/**
 * A worker's place in the keys of each fair type: the key its last claim read up to, or null to
 * start from the first. A claim that reaches the last key goes on from the first (the keys it read
 * already are not read twice), so every claim reads as many keys as there are, up to its count.
 * When a read found every key (fewer than a claim reads), the next claims reuse them for
 * KEYS_REUSE_MS: a key emptied meanwhile costs its one index probe, and finds nothing.
 *
 * The keys a claim gets start with the key whose turn it is (see fairRoundSql): after a claim took
 * n tasks (`served`), the next starts n keys further on, so claims smaller than the number of keys
 * (a limit's few free places, a worker's last slot) go round them all instead of serving the
 * first ones each time.
 */
export class FairCursors {
  private readonly after = new Map<string, string | null>();
  private readonly all = new Map<string, { keys: string[]; at: number; turn: number }>();
  /** The keys of each type's last claim, in its order. */
  private readonly last = new Map<string, string[]>();

  /** The keys of `type` the next claim reads (`read(after, count)`: statement 1 through the database's connection). */
  async keys(type: string, count: number, read: (after: string | null, count: number) => Promise<string[]>): Promise<string[]> {
    const steps = this.reads(type, count);
    let step = steps.next();
    while (!step.done) step = steps.next(await read(...step.value));
    return this.remember(type, step.value);
  }

  /** keys(), for a database whose statements run synchronously (SQLite, inside its claim's transaction). */
  keysNow(type: string, count: number, read: (after: string | null, count: number) => string[]): string[] {
    const steps = this.reads(type, count);
    let step = steps.next();
    while (!step.done) step = steps.next(read(...step.value));
    return this.remember(type, step.value);
  }

  /**
   * The last claim of `type` took `n` tasks: the next starts n keys further on (about the keys it
   * served: each key's first task comes in turn from the first key on). Nothing taken moves on
   * past every key read (their tasks may not be due yet, and keys past them may have some).
   */
  served(type: string, n: number): void {
    const keys = this.last.get(type);
    if (!keys || keys.length === 0) return;
    const all = this.all.get(type);
    if (all) all.turn = (all.turn + n) % all.keys.length;
    else if (n > 0 && n < keys.length) this.after.set(type, keys[n - 1]);
  }

  private remember(type: string, keys: string[]): string[] {
    this.last.set(type, keys);
    return keys;
  }

  /** The reads a claim makes (each yielded as `[after, count]`, answered with the keys read), and the keys it ends with. */
  private *reads(type: string, count: number): Generator<[string | null, number], string[], string[]> {
    const reused = this.reuse(type, count);
    if (reused) return reused;
    const after = this.after.get(type) ?? null;
    const keys = yield [after, count];
    if (keys.length === count) return this.advance(type, keys, count, keys, false);
    if (after === null) return this.advance(type, keys, count, keys, true);
    // The end was reached: from the first key again, for what is left (the keys read already are not taken twice).
    const seen = new Set(keys);
    const again = yield [null, count - keys.length];
    return this.advance(type, again, count - keys.length, [...keys, ...again.filter((k) => !seen.has(k))], again.length < count - keys.length);
  }

  /** Every key, read less than KEYS_REUSE_MS ago, from the one whose turn it is. */
  private reuse(type: string, count: number): string[] | undefined {
    const all = this.all.get(type);
    if (!all || all.keys.length > count || performance.now() - all.at >= KEYS_REUSE_MS) return undefined;
    return rotated(all.keys, all.turn);
  }

  /**
   * The last read got `last` of at most `count`: a full read goes on after its last key, a short
   * one starts over. `complete`: `keys` are every key there is (kept for reuse, the turn kept at
   * the key it was at).
   */
  private advance(type: string, last: readonly string[], count: number, keys: string[], complete: boolean): string[] {
    this.after.set(type, last.length === count && last.length > 0 ? last[last.length - 1] : null);
    const before = this.all.get(type);
    if (complete) {
      const turn = before ? Math.max(0, keys.indexOf(before.keys[before.turn])) : 0;
      this.all.set(type, { keys, at: performance.now(), turn });
      return rotated(keys, turn);
    }
    this.all.delete(type);
    return keys;
  }
}

/** `keys` from the one at `turn` on, then the ones before it. */
function rotated(keys: string[], turn: number): string[] {
  return turn === 0 ? keys : [...keys.slice(turn), ...keys.slice(0, turn)];
}
