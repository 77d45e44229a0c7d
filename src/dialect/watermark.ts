import { compareBig } from "./claimOrder";
import type { SqlParts } from "./contract";
import type { TaskRow } from "./dialect";

/** A position in claim order: priority (highest first), then run_at, then id. */
export interface ClaimPosition {
  priority: number;
  runAt: string;
  id: string;
}

/** How often a claim starts again from the head of the pending index, at the least. */
export const HEAD_CLAIM_EVERY_MS = 250;

/**
 * Where a worker's next claim starts reading the pending index (PostgreSQL and MySQL).
 *
 * Why: a claim moves rows out of the partial pending index, but their index entries stay until
 * vacuum (on MySQL, InnoDB's delete-marked entries of the claim index stay until purge). A claim from the head of the index steps over every entry earlier claims left there,
 * so with a big backlog each claim gets slower (NOTES: a plain loop drops from 46,000 to 15,400
 * tasks/s between 20,000 and 200,000 queued). Resuming after the last claimed position skips them.
 *
 * What must stay true: a task that sorts before the watermark (a higher priority, an earlier
 * due time reached later, a task handed back or rescued, an insert that committed late) is still
 * found. So a claim starts from the head: when there is no watermark; at least every
 * `HEAD_CLAIM_EVERY_MS`; after a resumed claim came back short (the rest of the queue may be
 * behind the watermark or at a lower priority); and at once, in the same call, when a resumed
 * claim found nothing. Such a task waits at most that long, and only while a backlog keeps the
 * worker busy.
 */
export class ClaimWatermark {
  private position: ClaimPosition | null = null;
  private lastHeadAt = -Infinity;
  private headNext = true;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /**
   * One claim: from just after the watermark when it may, and from the head at once when that
   * found nothing (whatever is ready is behind it, or at a lower priority).
   */
  async claim(limit: number, claimFrom: (after: ClaimPosition | null) => Promise<TaskRow[]>): Promise<TaskRow[]> {
    const after = this.next();
    let rows = await claimFrom(after);
    this.claimed(after, rows, limit);
    if (after !== null && rows.length === 0) {
      rows = await claimFrom(null);
      this.claimed(null, rows, limit);
    }
    return rows;
  }

  /** The position to resume after, or null for a claim from the head. */
  next(): ClaimPosition | null {
    if (this.headNext || this.position === null || this.now() - this.lastHeadAt >= HEAD_CLAIM_EVERY_MS) return null;
    return this.position;
  }

  /** Records what a claim (from `after`, or from the head when null) returned for `limit`. */
  claimed(after: ClaimPosition | null, rows: readonly TaskRow[], limit: number): void {
    if (after === null) {
      this.lastHeadAt = this.now();
      this.headNext = false;
    } else if (rows.length < limit) {
      this.headNext = true;
    }
    const last = lastInClaimOrder(rows);
    if (last) this.position = last;
    else if (after === null) this.position = null; // nothing ready at all
  }
}

/** The row a claim would have taken last: lowest priority, then latest run_at, then highest id. */
export function lastInClaimOrder(rows: readonly TaskRow[]): ClaimPosition | null {
  let last: TaskRow | undefined;
  for (const row of rows) {
    if (!last) last = row;
    else {
      const byPriority = Number(last.priority) - Number(row.priority);
      const byRunAt = compareBig(row.run_at, last.run_at);
      if (byPriority > 0 || (byPriority === 0 && (byRunAt > 0 || (byRunAt === 0 && compareBig(row.id, last.id) > 0)))) last = row;
    }
  }
  return last ? { priority: Number(last.priority), runAt: String(last.run_at), id: String(last.id) } : null;
}

/**
 * The condition that resumes a claim after `after` where a database has no row comparison in an
 * index range (MySQL): same priority, later in (run_at, id). The instants and the id are bound as
 * integers where they fit (bigint columns come back as strings): compared as integers.
 */
export function resumeAfterSql(after: ClaimPosition, sql: SqlParts): string {
  const int = (v: string) => (Number.isSafeInteger(Number(v)) ? Number(v) : v);
  return `priority = ${sql.param(after.priority, "int")} AND (run_at > ${sql.param(int(after.runAt), "bigint")} OR (run_at = ${sql.param(int(after.runAt), "bigint")} AND id > ${sql.param(int(after.id), "bigint")}))`;
}
