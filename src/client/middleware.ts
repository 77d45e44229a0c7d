/**
 * Middleware around enqueue and around run, as River's JobInsertMiddleware and WorkerMiddleware:
 * where tracing (a producer span, a trace context written on the row), tenancy or timing plug in
 * without touching ormq's code. Given to a DataSource's client (`ormqFor(ds).use(...)`), it
 * applies to every enqueue and every worker on that DataSource in this process, outermost first.
 */
import type { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { toError } from "../errors";
import type { TaskContext } from "../worker/context";

export interface Middleware {
  /**
   * Runs for each task enqueued (save(), insert(), enqueueMany), before its row is written. Before
   * `next()` the task holds what the caller set; after it, ormq's defaults are applied and the
   * task is validated. It may set columns (a trace context, a tenant); a throw refuses the
   * enqueue (nothing is written, the caller's transaction can roll back). The row is written once
   * the chain has returned.
   */
  enqueue?(task: BaseTaskEntity, next: () => Promise<void>): Promise<void>;
  /**
   * Runs around each attempt's `run()` in the worker (for thread and process tasks: around the
   * executor's run, in the worker's process). Returns what run() returned (or what it chooses);
   * a throw is the attempt's error, as if run() had thrown it.
   */
  run?(task: BaseTaskEntity, ctx: TaskContext, next: () => Promise<unknown>): Promise<unknown>;
}

export class MiddlewareStack {
  private enqueues: NonNullable<Middleware["enqueue"]>[] = [];
  private runs: NonNullable<Middleware["run"]>[] = [];

  /** Adds `middleware` innermost; returns the function that removes it. */
  add(middleware: Middleware): () => void {
    if (!middleware || typeof middleware !== "object") throw new TypeError("use(middleware): expected an object with enqueue() and/or run()");
    const { enqueue, run } = middleware;
    if (enqueue !== undefined && typeof enqueue !== "function") throw new TypeError("use(middleware): enqueue must be a function");
    if (run !== undefined && typeof run !== "function") throw new TypeError("use(middleware): run must be a function");
    if (enqueue === undefined && run === undefined) throw new TypeError("use(middleware): give enqueue(), run() or both");
    // New arrays: a chain under way keeps the list it started with.
    const boundEnqueue = enqueue?.bind(middleware);
    const boundRun = run?.bind(middleware);
    if (boundEnqueue) this.enqueues = [...this.enqueues, boundEnqueue];
    if (boundRun) this.runs = [...this.runs, boundRun];
    return () => {
      this.enqueues = this.enqueues.filter((f) => f !== boundEnqueue);
      this.runs = this.runs.filter((f) => f !== boundRun);
    };
  }

  /** Whether any enqueue middleware is set (none: the enqueue path takes no detour). */
  get hasEnqueue(): boolean {
    return this.enqueues.length > 0;
  }

  /** Whether any run middleware is set (none: run() is called directly). */
  get hasRun(): boolean {
    return this.runs.length > 0;
  }

  /** Runs the enqueue chain around `inner` (ormq's own defaults and checks). */
  enqueue(task: BaseTaskEntity, inner: () => Promise<void>): Promise<void> {
    const chain = this.enqueues;
    const step = (i: number): Promise<void> => settled(() => (i === chain.length ? inner() : chain[i](task, once(() => step(i + 1)))));
    return step(0);
  }

  /** Runs the run chain around `inner` (the executor's call of run()). */
  run(task: BaseTaskEntity, ctx: TaskContext, inner: () => unknown): Promise<unknown> {
    const chain = this.runs;
    const step = (i: number): Promise<unknown> => settled(() => (i === chain.length ? inner() : chain[i](task, ctx, once(() => step(i + 1)))));
    return step(0);
  }
}

/** A promise of what `fn` returns; a synchronous throw (a middleware that is not async) rejects it. */
function settled<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(toError(err));
  }
}

/** `next` may be called once: a second call would run the rest of the chain (and run()) twice. */
function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let called: Promise<T> | undefined;
  return () => {
    if (called) return Promise.reject(new Error("middleware called next() twice"));
    return (called = fn());
  };
}
