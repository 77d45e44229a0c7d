/**
 * The typed events of a DataSource's client (graphile-worker's WorkerEventMap, River's event
 * stream): what happened to tasks and workers in this process. Emitting is synchronous and cheap
 * when nobody listens (`listening` lets a caller skip building the payload); a listener that
 * throws is logged and skipped: an observer never stops a worker, an enqueue or a rescue.
 */
import { getDefaultLogger, type Logger } from "../logger";
import type { TransientReason } from "../dialect/contract";

/** Which task an event is about. */
export interface TaskRef {
  taskId: string;
  /** Its class's discriminator key. */
  type: string;
  queue: string;
}

/** An attempt in a worker. */
export interface AttemptRef extends TaskRef {
  workerId: string;
  /** The attempt's number: 1 on the first run. */
  attempt: number;
}

/** How an attempt ended, as written. */
export type AttemptOutcome = "succeeded" | "failed" | "retried" | "snoozed" | "cancelled";

/** An attempt whose outcome was written. */
export interface AttemptEnded extends AttemptRef {
  outcome: AttemptOutcome;
  /** From run()'s start to the outcome's write, in ms. */
  durationMs: number;
}

/** Every event, by name, with what it carries. */
export interface OrmqEventMap {
  /** A task's row was inserted (save(), insert(), enqueueMany, a schedule's tick), before its transaction commits. */
  "task:enqueued": TaskRef;
  /** A worker claimed the task (it may wait in the worker's buffer for a slot). */
  "task:claimed": AttemptRef;
  /** Its run() starts. */
  "task:started": AttemptRef;
  /** Any outcome was written (the events below name each). */
  "task:finished": AttemptEnded;
  "task:succeeded": AttemptEnded;
  /** Failed for good: no attempt is left, or the error said not to retry. */
  "task:failed": AttemptEnded;
  /** Failed, and will run again. */
  "task:retried": AttemptEnded;
  "task:snoozed": AttemptEnded;
  "task:cancelled": AttemptEnded;
  /**
   * The database refused one of a worker's transactions for a reason that passes (MySQL's deadlock
   * or lock wait timeout), and it runs again: no attempt fails for it.
   */
  "database:retried": { workerId: string; reason: TransientReason };
  /** The rescue took back a task whose worker stopped renewing its lease. */
  "task:rescued": { taskId: string; status: "succeeded" | "failed" | "pending" | "cancelled"; rescuedBy: string };
  /** A worker registered and starts claiming. */
  "worker:started": { workerId: string; types: readonly string[]; queues: readonly string[] | null };
  /** A worker stopped. */
  "worker:stopped": { workerId: string; processed: number };
}

export type OrmqEventName = keyof OrmqEventMap;
export type OrmqListener<E extends OrmqEventName> = (payload: OrmqEventMap[E]) => void;

export class ClientEvents {
  private readonly listeners = new Map<OrmqEventName, Set<(payload: never) => void>>();
  /** Where a listener's throw is reported. */
  logger: Logger = getDefaultLogger();

  /** Subscribes `listener` to `event`; returns the function that unsubscribes it. */
  on<E extends OrmqEventName>(event: E, listener: OrmqListener<E>): () => void {
    if (typeof listener !== "function") throw new TypeError(`on("${String(event)}", listener): listener must be a function`);
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(event) === set) this.listeners.delete(event);
    };
  }

  /** Whether anyone listens to `event` (skip building its payload when not). */
  listening(event: OrmqEventName): boolean {
    return this.listeners.has(event);
  }

  /** Tells every listener of `event`; a listener that throws is logged, the others still run. */
  emit<E extends OrmqEventName>(event: E, payload: OrmqEventMap[E]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as OrmqListener<E>)(payload);
      } catch (err) {
        try {
          this.logger.error({ err, event }, "an ormq event listener threw; it was skipped");
        } catch {
          // a logger that throws must not reach the worker either
        }
      }
    }
  }
}
