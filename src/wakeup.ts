import { EventEmitter } from "node:events";
import type { DataSource } from "typeorm";

/**
 * In-process wake-ups: an enqueue that commits through a DataSource wakes the workers of that
 * DataSource in this process at once, on both dialects (PostgreSQL's LISTEN covers other
 * processes; SQLite's change check in `dialect/sqlite.ts` covers them there).
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

/** Tells this process's workers that tasks were committed to these queues. */
export function announceCommitted(dataSource: DataSource, queues: readonly string[]): void {
  bus(dataSource).emit("tasks", queues);
}

/** Calls `fn` on each committed enqueue; returns the unsubscribe function. */
export function onCommitted(dataSource: DataSource, fn: (queues: readonly string[]) => void): () => void {
  const emitter = bus(dataSource);
  emitter.on("tasks", fn);
  return () => emitter.off("tasks", fn);
}
