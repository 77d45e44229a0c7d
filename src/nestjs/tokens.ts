/**
 * The injection tokens of `ormq/nestjs`, and whether this process runs the in-app worker (the CLI
 * turns it off when it loads the application's module to run a worker of its own).
 */
import type { DataSource } from "typeorm";
import type { WorkerOptions } from "../worker/options";

/** The module's options, as given to forRoot (or made by forRootAsync's factory). */
export const ORMQ_OPTIONS = Symbol.for("ormq.nestjs.options");
/** The DataSource ormq works on: `@Inject(ORMQ_DATA_SOURCE)`. */
export const ORMQ_DATA_SOURCE = Symbol.for("ormq.nestjs.dataSource");

/** A worker's options under Nest: what the module does not set itself. */
export type NestWorkerOptions = Omit<WorkerOptions, "dataSource" | "signal" | "resolver">;

/** Options of `OrmqModule.forRoot` (and what `forRootAsync`'s factory returns). */
export interface OrmqModuleOptions {
  /**
   * The DataSource: a DataSource, or the name of a `@nestjs/typeorm` connection (default: its
   * default one). In forRootAsync, a name is given beside the factory, not by it.
   */
  dataSource?: DataSource | string;
  /**
   * The worker this application runs, started when the application has bootstrapped and
   * stopped (its running tasks given their grace) before the DataSource closes: `true` (the
   * default: every task class of the DataSource at ormq's defaults), worker options (types,
   * queues, concurrency, …), or `false` for a process that only enqueues (a web tier, with
   * `ormq process -d dist/app.module.js` running the tasks elsewhere).
   */
  worker?: boolean | NestWorkerOptions;
}

/** Set by the CLI before it builds the application: its own worker runs the tasks. */
let inAppWorkers = true;

/** Whether OrmqModule starts the worker of its options (false under `ormq process`). */
export function inAppWorkersEnabled(): boolean {
  return inAppWorkers;
}

/** Turns the in-app worker off for this process (the CLI's worker takes its place). */
export function disableInAppWorkers(): void {
  inAppWorkers = false;
}
