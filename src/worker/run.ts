import type { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { InvalidOptionError } from "../errors";
import type { TaskClass } from "../registry";
import { resolveOptions, type ResolvedOptions, type SettingSources, type WorkerOptions } from "./options";
import { Worker, type ProcessSummary } from "./worker";

/*
 * Each function takes `sources` last: where settings come from besides `options` (the
 * environment, `process.env` by default, and the CLI's flags). See `WORKER_SETTINGS`.
 */

/**
 * Runs at most `n` attempts of `taskClass`'s tasks (and its subclasses'; every type for
 * BaseTaskEntity), never claiming more than `n` minus those in flight. Resolves when `n` attempts
 * have finished, or when no task is ready and none is running.
 */
export async function processN(taskClass: TaskClass, n: number, options?: WorkerOptions, sources?: SettingSources): Promise<ProcessSummary> {
  if (!Number.isInteger(n) || n < 0) throw new InvalidOptionError(`processN: n must be an integer of 0 or more, got ${n}`);
  return runN(taskClass, resolveOptions(taskClass, options, sources), n);
}

/** processN with options resolved already (`ormq process` resolves its settings once, at the edge). */
export async function runN(taskClass: TaskClass, resolved: ResolvedOptions, n: number): Promise<ProcessSummary> {
  return new Worker(taskClass, resolved, n).run();
}

/** Runs one ready task, if any; resolves with it as it is after the attempt, or null. */
export async function processOne<T extends BaseTaskEntity>(taskClass: TaskClass<T>, options?: WorkerOptions): Promise<T | null> {
  const resolved = resolveOptions(taskClass, { ...options, concurrency: 1, batchSize: 1, prefetch: 0 });
  const worker = new Worker(taskClass, resolved, 1);
  await worker.run();
  if (worker.lastTaskId === undefined) return null;
  return (await resolved.dataSource.getRepository<T>(taskClass).findOneBy({ id: worker.lastTaskId } as never)) ?? null;
}

/**
 * Runs tasks until `options.signal` aborts or the process receives SIGINT or SIGTERM. It then
 * stops claiming, gives running tasks the grace period, aborts their signal, and hands back what
 * it could not finish. A second SIGINT/SIGTERM skips the rest of the grace period.
 */
export async function processForever(taskClass: TaskClass, options?: WorkerOptions, sources?: SettingSources): Promise<ProcessSummary> {
  return runForever(taskClass, resolveOptions(taskClass, options, sources));
}

/** processForever with options resolved already (`ormq process` resolves its settings once, at the edge). */
export async function runForever(taskClass: TaskClass, resolved: ResolvedOptions): Promise<ProcessSummary> {
  const worker = new Worker(taskClass, resolved, Infinity);
  let signals = 0;
  const onSignal = (name: NodeJS.Signals) => {
    signals++;
    resolved.logger.info({ signal: name }, signals === 1 ? "stopping" : "stopping now");
    worker.stop();
    if (signals > 1) worker.skipGrace();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    return await worker.run();
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
