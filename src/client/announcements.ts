import { EventEmitter } from "node:events";
import type { DataSource, QueryRunner } from "typeorm";
import { announceNewTasks } from "../dialect";

/**
 * What an enqueue announces: the queue and the type of the tasks it committed, as one string
 * (`queue/type`; a queue name has no `/`, so the first one separates them). A worker wakes only
 * for its own types and queues: with every class in the queue "default", announcing queues alone
 * woke every idle worker of every type on each enqueue, for a claim that found nothing.
 */
export function announcementOf(queue: string, type: string): string {
  return `${queue}/${type}`;
}

/** Whether a worker for `types` (and `queues`, null for all) has anything to claim after these. */
export function concerns(announcements: readonly string[] | null, types: ReadonlySet<string>, queues: readonly string[] | null): boolean {
  if (!announcements || announcements.length === 0) return true; // unknown: look
  return announcements.some((a) => {
    const slash = a.indexOf("/");
    if (slash < 0) return true; // not ours to read: look
    return types.has(a.slice(slash + 1)) && (!queues || queues.includes(a.slice(0, slash)));
  });
}

/**
 * A DataSource's announcements, held by its client (see src/client/client.ts). In-process
 * wake-ups: an enqueue that commits through the DataSource wakes its workers in this process at
 * once, on both dialects (PostgreSQL's LISTEN covers other processes; SQLite's change check in
 * `dialect/sqlite/dialect.ts` covers them there). And the NOTIFY for other processes: one per
 * turn of the event loop for what was committed in it (a multi-row insert() announces each row).
 */
export class Announcements {
  private readonly bus = new EventEmitter();
  /** Per open transaction: the queues and types that got tasks, announced at its commit. */
  private readonly pending = new WeakMap<QueryRunner, Set<string>>();
  /** Committed new tasks whose NOTIFY is not sent yet, or undefined when none is due. */
  private unsent: Set<string> | undefined;

  constructor(private readonly dataSource: DataSource, private readonly origin: string) {
    this.bus.setMaxListeners(0);
  }

  /** Calls `fn` on each committed enqueue; returns the unsubscribe function. */
  onCommitted(fn: (announcements: readonly string[]) => void): () => void {
    this.bus.on("tasks", fn);
    return () => this.bus.off("tasks", fn);
  }

  /**
   * Announces inserted tasks: at the commit of `runner`'s transaction when one is open, else soon
   * after (an insert() of many rows calls afterInsert once per row: they are announced once).
   */
  inserted(runner: QueryRunner, announcements: Iterable<string>): void {
    if (!runner.isTransactionActive) {
      for (const announcement of announcements) this.soon(announcement);
      return;
    }
    let waiting = this.pending.get(runner);
    if (!waiting) this.pending.set(runner, (waiting = new Set()));
    for (const announcement of announcements) waiting.add(announcement);
  }

  /** Tasks that became ready outside any transaction (a workflow's dependents released): announced now. */
  released(announcements: Iterable<string>): void {
    for (const announcement of announcements) this.soon(announcement);
  }

  /** `runner`'s transaction committed: what it inserted is announced (not at a savepoint's release). */
  committed(runner: QueryRunner): void {
    const announcements = this.pending.get(runner);
    if (!announcements || runner.isTransactionActive) return;
    this.pending.delete(runner);
    for (const announcement of announcements) this.soon(announcement);
  }

  /** `runner`'s transaction rolled back (a savepoint's rollback keeps what it announced). */
  rolledBack(runner: QueryRunner): void {
    if (!runner.isTransactionActive) this.pending.delete(runner);
  }

  /** Wakes this process's workers at once, and other processes' with one NOTIFY per turn. */
  private soon(announcement: string): void {
    this.bus.emit("tasks", [announcement]);
    if (this.unsent) {
      this.unsent.add(announcement);
      return;
    }
    const waiting = (this.unsent = new Set([announcement]));
    setImmediate(() => {
      this.unsent = undefined;
      announceNewTasks(this.dataSource, [...waiting], this.origin).catch(() => {
        // Only a wake-up was lost: workers still find the tasks by polling.
      });
    });
  }
}
