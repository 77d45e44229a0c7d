/**
 * What a worker may claim now, given the flow controls: paused queues and types are not claimed
 * at all, and tasks under a concurrency limit (their class's, or their queue's) are claimed only
 * through the dialect's limited claim, never ahead of free slots. The controls are read from the
 * database about once a second (`refresh`), so a pause or a limit set anywhere takes effect here
 * within a second; a class's own limit is known from the start.
 */
import { SCHEMA_VERSION } from "../../entities/ControlEntity";
import type { ClaimLimits, ClaimRequest, Controls, Dialect, TaskRow } from "../dialect";
import { OrmqConfigurationError } from "../errors";
import type { TaskType } from "../registry";

/** A claim request without its limit. */
export type ClaimShape = Omit<ClaimRequest, "limit">;

/** The claims a worker makes: tasks under no limit, each fair class's, and tasks under a limit. */
export interface ClaimShapes {
  plain: ClaimShape | null;
  /** One per class with `static fairness` and no limit of its own, claimed round-robin across its keys. */
  fair: ClaimShape[];
  /** Tasks under a limit, of classes without fairness. */
  limited: ClaimShape | null;
  /** One per class with `static fairness` when any limit may apply to its tasks: the limited claim, in rounds across its keys. */
  fairLimited: ClaimShape[];
}

/** Most fair claims one claim makes per fair class (see claim()). */
const FAIR_ROUNDS = 4;

const NO_CONTROLS: Controls = { pausedQueues: [], pausedTypes: [], queueLimits: new Map(), queueRates: new Map(), schemaVersion: null };

export class FlowGate {
  private controls = NO_CONTROLS;

  constructor(
    private readonly dialect: Dialect,
    private readonly types: readonly TaskType[],
    /** The worker's claim: every type it runs, its queues, lease and history types. */
    private readonly base: ClaimShape,
  ) {}

  /**
   * Reads the controls again. Refuses a schema newer than this ormq knows (its limits and pauses
   * would be ignored), and one older (its writes would name columns the tables lack). Returns
   * whether anything that decides what to claim changed.
   */
  async refresh(): Promise<boolean> {
    const next = await this.dialect.readControls();
    if (next.schemaVersion !== null && next.schemaVersion > SCHEMA_VERSION) {
      throw new OrmqConfigurationError(
        `the database's ormq tables are version ${next.schemaVersion}, newer than this ormq (version ${SCHEMA_VERSION}): upgrade ormq before running this worker`,
      );
    }
    if (next.schemaVersion !== null && next.schemaVersion < SCHEMA_VERSION) {
      throw new OrmqConfigurationError(
        `the database's ormq tables are version ${next.schemaVersion}, older than this ormq (version ${SCHEMA_VERSION}): run ormq's migrations (ormqMigrations) before running this worker`,
      );
    }
    const changed = key(next) !== key(this.controls);
    this.controls = next;
    if (changed) this.made = undefined;
    return changed;
  }

  /** The paused queues and types (for the worker's log and summary). */
  get paused(): { queues: readonly string[]; types: readonly string[] } {
    return { queues: this.controls.pausedQueues, types: this.controls.pausedTypes };
  }

  /**
   * Claims up to `want` ready tasks: tasks under no limit first, then tasks under a limit with
   * what is left. A task claimed counts against its limits whether it runs or waits in this
   * worker's buffer, so no limit is exceeded by claiming ahead; the buffer (the prefetch gauge's:
   * what the slots get through in two claim round trips) bounds how long a place held here waits.
   * Claiming only for free slots was measured at 4% of the unlimited drain's rate (a claim of a
   * few tasks at a time); batches keep it at about two thirds. `full`: a claim came back full.
   */
  async claim(want: number): Promise<{ rows: TaskRow[]; full: boolean }> {
    const { plain, fair, limited, fairLimited } = this.requests();
    const rows = plain ? await this.dialect.claim({ ...plain, limit: want }) : [];
    let full = plain !== null && rows.length === want;
    for (const shape of fair) {
      // A fair claim reads a share of each key's head: keys with fewer ready tasks than their share
      // leave places, which the next claims (the keys that have more) fill.
      for (let round = 0; round < FAIR_ROUNDS; round++) {
        const fairWant = want - rows.length;
        if (fairWant <= 0) break;
        const more = await this.dialect.claim({ ...shape, limit: fairWant });
        rows.push(...more);
        full ||= more.length === fairWant;
        if (more.length === 0 || more.length === fairWant) break;
      }
    }
    for (const shape of limited ? [limited, ...fairLimited] : fairLimited) {
      const limitedWant = want - rows.length;
      if (limitedWant <= 0) break;
      const more = await this.dialect.claim({ ...shape, limit: limitedWant });
      rows.push(...more);
      full ||= more.length === limitedWant; // every place asked for taken: more may be ready
    }
    return { rows, full };
  }

  /** Whether tasks under a limit may be waiting for room (see ClaimLoopDeps.limitsActive). */
  get limitsActive(): boolean {
    const { limited, fairLimited } = this.requests();
    return limited !== null || fairLimited.length > 0;
  }

  /** Whether a claimed task may not start now: its queue or type was paused since. */
  blocked(row: TaskRow): boolean {
    return this.controls.pausedTypes.includes(String(row.type)) || this.controls.pausedQueues.includes(String(row.queue));
  }

  /**
   * The claims to make: `plain` for tasks under no limit (claimed ahead as the gauge says), and
   * `limited` for tasks under one (at most the free slots). Either is null when there is nothing
   * of that kind to claim.
   */
  requests(): ClaimShapes {
    // Every claim asks: made again only when the controls changed.
    return (this.made ??= this.makeRequests());
  }

  private made: ClaimShapes | undefined;

  private makeRequests(): ClaimShapes {
    const { pausedQueues, pausedTypes, queueLimits, queueRates } = this.controls;
    const runnable = this.types.filter((t) => !pausedTypes.includes(t.key));
    const wanted = (queue: string) => (this.base.queues === null || this.base.queues.includes(queue)) && !pausedQueues.includes(queue);
    const limitedQueues = [...queueLimits].filter(([queue]) => wanted(queue));
    const ratedQueues = [...queueRates].filter(([queue]) => wanted(queue));
    const unlimited = runnable.filter((t) => !t.concurrency && !t.rate);
    const plainTypes = unlimited.filter((t) => !t.fairness).map((t) => t.key);
    const excludedQueues = [...new Set([...pausedQueues, ...limitedQueues.map(([queue]) => queue), ...ratedQueues.map(([queue]) => queue)])];
    const plain = plainTypes.length === 0 ? null : { ...this.base, types: plainTypes, excludedQueues };
    const fairOf = (t: TaskType) => ({ type: t.key, weights: t.fairness!.weights });
    const fair = unlimited.filter((t) => t.fairness).map((t) => ({ ...this.base, types: [t.key], excludedQueues, fair: fairOf(t) }));
    const limits: ClaimLimits = {
      types: runnable.filter((t) => t.concurrency).map((t) => ({ type: t.key, column: t.concurrency!.column, max: t.concurrency!.max })),
      queues: limitedQueues.map(([queue, max]) => ({ queue, max })),
      typeRates: runnable.filter((t) => t.rate).map((t) => ({ type: t.key, column: t.rate!.column, max: t.rate!.max, perMs: t.rate!.perMs })),
      queueRates: ratedQueues.map(([queue, rate]) => ({ queue, ...rate })),
    };
    const anyLimit = limits.types.length + limits.queues.length + limits.typeRates.length + limits.queueRates.length > 0;
    if (!anyLimit) return { plain, fair, limited: null, fairLimited: [] };
    // The limited claim takes only tasks under a limit (their class's or their queue's): a fair
    // class's have a claim of their own, which applies the limits and takes them in rounds.
    const limitedTypes = runnable.filter((t) => !t.fairness).map((t) => t.key);
    const limited = limitedTypes.length === 0 ? null : { ...this.base, types: limitedTypes, excludedQueues: pausedQueues, limits };
    // Only where a limit can apply to the class's tasks: its own, or a queue's (a limit of another
    // class would leave this claim nothing to take, at a statement and a lock each time).
    const queueLimited = limitedQueues.length + ratedQueues.length > 0;
    const fairLimited = runnable
      .filter((t) => t.fairness && (t.concurrency || t.rate || queueLimited))
      .map((t) => ({ ...this.base, types: [t.key], excludedQueues: pausedQueues, limits, fair: fairOf(t) }));
    return { plain, fair, limited, fairLimited };
  }
}

function key(c: Controls): string {
  return JSON.stringify([c.pausedQueues, c.pausedTypes, [...c.queueLimits], [...c.queueRates]]);
}
