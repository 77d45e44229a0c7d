import type { DataSource, EntityMetadata, SaveOptions } from "typeorm";
import type { TaskStatus } from "./status";
import { OrmqConfigurationError } from "../src/errors";

/**
 * What entity methods that need the database (`task.cancel()`) call. Entities sit at the bottom
 * of the house and import no layer above them; ormq registers the operations here when a DataSource
 * with its subscriber is built (`src/setup.ts`).
 */
export interface TaskOperations {
  cancel(id: string, options: { dataSource: DataSource; reason?: string }): Promise<CancelResult>;
  waitForResult(id: string, options: WaitOptions & { dataSource: DataSource }): Promise<WaitResult>;
  /** The options `task.save()` passes on to TypeORM (see src/tasks/saveOptions.ts). */
  saveOptions(dataSource: DataSource, metadata: EntityMetadata, options: SaveOptions | undefined, task: { dependsOn?: readonly unknown[] }): SaveOptions | undefined;
}

/** Options of `waitForResult`. */
export interface WaitOptions {
  /** Rejects with `WaitTimeoutError` after this long (the task goes on). Default: no limit. */
  timeoutMs?: number;
  /** Rejects with the signal's reason when it aborts (the task goes on). */
  signal?: AbortSignal;
  /** Called with each new progress the task reports (`ctx.progress`), as the wait sees it. */
  onProgress?: (progress: TaskProgress) => void;
}

/** A task's progress as its run reported it. */
export interface TaskProgress {
  /** The task's id. */
  id: string;
  /** 0..1. */
  fraction: number;
  message: string | null;
}

/** What a wait for a successful task resolves with. */
export interface WaitResult<R = unknown> {
  id: string;
  /** What run() returned (as stored: JSON), or undefined when the row was deleted. */
  result: R | undefined;
  /**
   * True when the task's row was gone: its class keeps no succeeded rows (`keepSucceeded =
   * false`), so success deletes it. (A task deleted by other means reads the same way.)
   */
  deleted: boolean;
}

/** What `cancelTask` did. */
export type CancelResult =
  /** It was pending: it is now `cancelled` and will not run. */
  | { outcome: "cancelled"; id: string }
  /** It is running: its worker aborts its signal (within about a second) and it ends `cancelled`. */
  | { outcome: "cancelRequested"; id: string }
  /** It had already finished; nothing changed. */
  | { outcome: "alreadyFinished"; id: string; status: TaskStatus }
  | { outcome: "notFound"; id: string };

let registered: TaskOperations | undefined;

/** Called once, by `installOrmq` (src/setup.ts). */
export function registerTaskOperations(operations: TaskOperations): void {
  registered = operations;
}

/** The registered operations, once a DataSource with ormq's subscriber was built. */
export function maybeTaskOperations(): TaskOperations | undefined {
  return registered;
}

/** The registered operations; a clear error when no DataSource with ormq's subscriber was built. */
export function taskOperations(): TaskOperations {
  if (!registered) {
    throw new OrmqConfigurationError("ormq is not set up: build the DataSource with ormq's subscribers (`subscribers: [...ormqSubscribers]`, or ormqDataSourceOptions) before calling task methods");
  }
  return registered;
}
