import { EventEmitter } from "node:events";
import type { DataSource } from "typeorm";

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
 * In-process wake-ups: an enqueue that commits through a DataSource wakes the workers of that
 * DataSource in this process at once, on both dialects (PostgreSQL's LISTEN covers other
 * processes; SQLite's change check in `dialect/sqlite/dialect.ts` covers them there).
 */
const buses = new WeakMap<DataSource, EventEmitter>();

function bus(dataSource: DataSource): EventEmitter {
  let emitter = buses.get(dataSource);
  if (!emitter) {
    emitter = new EventEmitter();
    emitter.setMaxListeners(0);
    buses.set(dataSource, emitter);
  }
  return emitter;
}

/** Tells this process's workers that tasks were committed (see announcementOf). */
export function announceCommitted(dataSource: DataSource, announcements: readonly string[]): void {
  bus(dataSource).emit("tasks", announcements);
}

/** Calls `fn` on each committed enqueue; returns the unsubscribe function. */
export function onCommitted(dataSource: DataSource, fn: (announcements: readonly string[]) => void): () => void {
  const emitter = bus(dataSource);
  emitter.on("tasks", fn);
  return () => emitter.off("tasks", fn);
}
