/**
 * The worker's session on a database: the statements of the hot path and of a worker's own
 * upkeep, each database's own (`postgres/dialect.ts`, `sqlite/dialect.ts`), opened by its contract
 * (contract.ts `worker`). Grouped by job: tasks (claim, complete, due times, cancel requests),
 * queues (the flow controls), workers (register, heartbeat, stop), rescue, wake-ups.
 */

/** A row of `ormq_tasks` as the database returns it (column names, driver value types). */
export type TaskRow = Record<string, unknown>;

/** What a worker asks for when it claims. */
export interface ClaimRequest {
  /** Discriminator keys the worker can run. A row of any other type is left alone. */
  types: readonly string[];
  /** Queues to take from; `null` takes from every queue. */
  queues: readonly string[] | null;
  /** At most this many tasks. */
  limit: number;
  /** Lease length: the task's `locked_until` becomes the database's now plus this. */
  leaseMs: number;
  /** Queues whose tasks are not taken: paused, or limited (claimed under `limits` instead). */
  excludedQueues?: readonly string[];
  /**
   * Claim only tasks under these concurrency limits, and no more than they leave room for:
   * serialised with every other limited claim on the database (see limitedClaim.ts).
   */
  limits?: ClaimLimits;
  /**
   * Claim the tasks of one class with `static fairness` round-robin across their share keys (see
   * fairClaim.ts); `types` is then that class's type alone.
   */
  fair?: FairClaim;
  /**
   * The columns a claimed row brings back (database names, from the entity metadata); every
   * column when absent. A worker asks for its types' columns only, not the ones it never reads
   * (progress, the unique window, other classes' columns): measured, `t.*` of a 24-column row
   * cost a default PostgreSQL drain 11 µs of worker CPU per task and a tenth of its rate.
   * Every dialect's claim must write `locked_by` (its worker id), `started_at` and `updated_at`
   * (the database's now) and `locked_until` (that now plus `leaseMs`) alike, on every row: the
   * worker does not read those three back but sets them (hydrateClaimed; the conformance suite
   * checks it).
   */
  columns?: readonly string[];
}

/** What a fair claim asks besides a claim's usual request (see fairClaim.ts). */
export interface FairClaim {
  /** The one fair type this claim is for (a worker claims each fair class by itself). */
  type: string;
  /** Weight by key; a key not here weighs 1. */
  weights: ReadonlyMap<string, number>;
}

/** The concurrency limits a limited claim applies. */
export interface ClaimLimits {
  /** Class limits: at most `max` running of `type` per value of `column` (its database name; null: in all). */
  types: readonly { type: string; column: string | null; max: number }[];
  /** Queue limits: at most `max` running in `queue`, of any type. */
  queues: readonly { queue: string; max: number }[];
  /** Class rate limits: at most `max` of `type` claimed per `perMs`, per value of `column` (null: in all). */
  typeRates: readonly { type: string; column: string | null; max: number; perMs: number }[];
  /** Queue rate limits: at most `max` of the queue's tasks claimed per `perMs`. */
  queueRates: readonly { queue: string; max: number; perMs: number }[];
}

/** Flow controls set at run time (ormq_controls), and the schema version (ormq_meta). */
export interface Controls {
  pausedQueues: readonly string[];
  pausedTypes: readonly string[];
  /** Concurrency limits of queues. */
  queueLimits: ReadonlyMap<string, number>;
  /** Rate limits of queues. */
  queueRates: ReadonlyMap<string, { max: number; perMs: number }>;
  /** ormq_meta's schema_version; null when not recorded (a schema made by synchronize). */
  schemaVersion: number | null;
}

/**
 * One finished attempt, written back as one guarded UPDATE (or DELETE, see `remove`): it only takes
 * effect while the task is still `running`, held by this worker, on the same attempt. Built by the
 * constructors in `../worker/outcome.ts`.
 */
export interface Completion {
  id: string;
  /** The task's `attempts` at claim: a later claim of the same task is a different attempt. */
  attempt: number;
  status: "succeeded" | "failed" | "pending" | "cancelled";
  /** JSON text of the result, or null. */
  result: string | null;
  /** New `last_error`, or null to keep it. */
  lastError: string | null;
  /** JSON text of the new `errors` list, or null to keep it. */
  errors: string | null;
  /** For `pending`: the task is due this long after the database's now. */
  delayMs: number | null;
  /** Hand back: the attempt did not really run, so it does not count. */
  refundAttempt: boolean;
  /** The history event for this outcome (`cancelled` instead, if a cancel request wins). */
  event: TaskEventKind;
  /** Record the event (the task class's `history`). */
  history: boolean;
  /**
   * Delete the task's row instead of updating it (a success of a class with `keepSucceeded =
   * false`), under the same guard. A row another table's foreign key still points to (without ON
   * DELETE) is updated to succeeded instead, and a warning says so.
   */
  remove: boolean;
}

/**
 * Called when tasks may have become ready; `announcements` (queue and type, see `announcementOf`
 * in ../client/announcements.ts) narrow it when known.
 */
export type WakeHandler = (announcements: readonly string[] | null) => void;

/**
 * Which tasks a worker can run: the claim's filters without its limit and lease. (The admin's
 * filter of stored tasks is another thing: `TaskFilter` in admin/taskFilter.ts.)
 */
export type ClaimFilter = Pick<ClaimRequest, "types" | "queues">;
import type { TaskEventKind } from "../../entities/TaskEventEntity";

/** A task's status after its outcome was written. */
export type FinalStatus = Completion["status"];

/** The escaped names of ormq's tables. */
export interface Tables {
  tasks: string;
  workers: string;
  events: string;
  controls: string;
  meta: string;
  rateClaims: string;
  dependencies: string;
}

/** A worker's row in `ormq_workers` at registration. */
export interface WorkerInfo {
  name: string;
  host: string;
  pid: number;
  queues: readonly string[] | null;
  /** It runs a class with `static fairness` (its claim's index is then made where it is not a migration's: MySQL). */
  fair?: boolean;
}

/** What a heartbeat did to the leases it was asked to renew. */
export interface Renewal {
  /** Ids whose lease it extended. */
  renewed: Set<string>;
  /**
   * Ids this worker still held by the statement's snapshot whose row it could not lock at once:
   * another transaction held it (this worker's own completion, a cancel request), or it changed
   * since the snapshot (an outcome or a rescue just committed). Neither renewed nor judged lost:
   * the next beat tells.
   */
  busy: Set<string>;
}

/** A task the rescue returned to the queue (or ended), and the worker that lost it. */
export interface RescuedTask {
  id: string;
  status: FinalStatus;
}

/** A database as the worker sees it. */
export interface Dialect {
  readonly name: "postgres" | "sqlite" | "mysql";
  /**
   * How many completion statements a worker may have in flight at once: 2 on PostgreSQL (each on
   * its own pool connection, so the server works on both), 1 on SQLite (one connection).
   */
  readonly completionWriters: number;
  /**
   * Whether a claim may come back without ready tasks another worker's claim was only looking at:
   * MySQL locks each row its locking read examines before it tests the row's type and queue, so
   * a claim of another queue holds them for a moment and SKIP LOCKED passes them over. A worker
   * that would stop for want of ready tasks (processN) looks again while some remain.
   */
  readonly claimMaySkipReady?: boolean;
  /** This worker's id, stamped on the tasks it holds. */
  readonly workerId: string;

  // Tasks
  /** Marks up to `limit` ready tasks running for this worker and returns their rows, in claim order (see claimOrder.ts). */
  claim(request: ClaimRequest): Promise<TaskRow[]>;
  /**
   * Writes finished attempts. Returns, for each task whose guarded write took effect, its status
   * now: a cancel request made while it ran turns a retry, a snooze or a hand-back into
   * `cancelled`. A task missing from the map was no longer this worker's to finish.
   */
  complete(completions: readonly Completion[]): Promise<Map<string, FinalStatus>>;
  /** Milliseconds until the earliest upcoming due time among tasks it could claim; null if none. */
  nextDueInMs(filter: ClaimFilter): Promise<number | null>;
  /** Of these running tasks held by this worker, the ids someone asked to cancel. */
  cancelRequested(ids: readonly string[]): Promise<string[]>;

  // Queues
  /** The flow controls every worker applies: read about once a second. */
  readControls(): Promise<Controls>;

  // Workers
  /** Adds this worker's row to `ormq_workers`. */
  registerWorker(info: WorkerInfo): Promise<void>;
  /**
   * Records that this worker is alive and extends the lease of the running tasks it holds to the
   * database's now plus `leaseMs`. Says which leases it renewed and which rows were busy; any
   * other id asked was lost. It never waits for a row another transaction holds.
   */
  heartbeat(runningIds: readonly string[], leaseMs: number): Promise<Renewal>;
  /** Marks this worker stopped. */
  markStopped(): Promise<void>;

  // Rescue
  /**
   * Returns up to `limit` running tasks whose lease expired to the queue (attempt counted; failed
   * when out of attempts; cancelled when a cancel was requested), recording "worker lost" in their
   * errors. The UPDATE re-checks status and lease itself, so a completion that got in first wins.
   */
  rescueExpired(limit: number): Promise<RescuedTask[]>;

  // Wake-ups
  /** Starts telling `onWake` when new tasks may be ready (LISTEN, or a cheap change check). */
  listen(onWake: WakeHandler): Promise<void>;
  /** Stops listening and releases the dialect's own connections. The DataSource stays open. */
  close(): Promise<void>;
}
