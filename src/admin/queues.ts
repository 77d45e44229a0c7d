/**
 * Flow controls set at run time, for every worker on every host: pause and resume a queue or a
 * task type, and a queue's concurrency limit. Each is one upsert in `ormq_controls`; workers read
 * that table about once a second, so a change applies everywhere within a second. Lowering a
 * limit or pausing never stops a running task: it stops new claims.
 */
import type { DataSource } from "typeorm";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { readControlRows, type ControlRow } from "../dialect/controlsRead";
import { upsertControl } from "../dialect/controlsWrites";
import { InvalidOptionError } from "../errors";
import { resolveDataSource } from "../dataSource";
import { checkFilterText, checkQueueFilter } from "./taskFilter";
import { isLimit, isRateWindow, MAX_LIMIT, MAX_RATE_WINDOW_MS, MIN_RATE_WINDOW_MS } from "../flow/limitSpec";
import { ormqFor } from "../client/client";

export type { ControlRow };

/** Limits of a queue: `concurrency` is at most that many of its tasks running at once; null removes the limit. */
export interface QueueLimits {
  concurrency?: number | null;
  /** At most `max` of the queue's tasks claimed in any `perMs` window; null removes it. */
  rate?: { max: number; perMs: number } | null;
}

/** Stops every worker from claiming the queue's tasks (within a second); enqueue still works. */
export async function pauseQueue(queue: string, options: { dataSource?: DataSource } = {}): Promise<void> {
  await setControl(options, "queue", checkQueueFilter(queue, "pauseQueue(queue)"), { paused: true });
}

/** Lets workers claim the queue's tasks again. */
export async function resumeQueue(queue: string, options: { dataSource?: DataSource } = {}): Promise<void> {
  await setControl(options, "queue", checkQueueFilter(queue, "resumeQueue(queue)"), { paused: false });
}

/** Stops every worker from claiming tasks of this type (its `@ChildEntity` key), in any queue. */
export async function pauseType(type: string, options: { dataSource?: DataSource } = {}): Promise<void> {
  await setControl(options, "type", checkType(type, "pauseType(type)"), { paused: true });
}

/** Lets workers claim tasks of this type again. */
export async function resumeType(type: string, options: { dataSource?: DataSource } = {}): Promise<void> {
  await setControl(options, "type", checkType(type, "resumeType(type)"), { paused: false });
}

/**
 * Sets a queue's limits, for every worker within a second: `{ concurrency: 5 }` (at most 5
 * running), `{ rate: { max: 100, perMs: 60_000 } }` (at most 100 claimed a minute); null removes
 * one, a limit not named is left as it is.
 */
export async function setQueueLimits(queue: string, limits: QueueLimits, options: { dataSource?: DataSource } = {}): Promise<void> {
  const name = checkQueueFilter(queue, "setQueueLimits(queue)");
  if (typeof limits !== "object" || limits === null) throw new InvalidOptionError("setQueueLimits(queue, limits): limits must be an object such as { concurrency: 5 }");
  for (const key of Object.keys(limits)) if (key !== "concurrency" && key !== "rate") throw new InvalidOptionError(`setQueueLimits: unknown limit "${key}" (concurrency, rate)`);
  const { concurrency, rate } = limits;
  if (rate !== undefined && rate !== null) {
    const { max, perMs } = rate as { max?: unknown; perMs?: unknown };
    if (!isLimit(max)) throw new InvalidOptionError(`setQueueLimits: rate.max must be an integer from 1 to ${MAX_LIMIT}; got ${JSON.stringify(max)}`);
    if (!isRateWindow(perMs)) {
      throw new InvalidOptionError(`setQueueLimits: rate.perMs must be an integer from ${MIN_RATE_WINDOW_MS} to ${MAX_RATE_WINDOW_MS} (milliseconds); got ${JSON.stringify(perMs)}`);
    }
  }
  if (concurrency !== undefined && concurrency !== null && !isLimit(concurrency)) {
    throw new InvalidOptionError(`setQueueLimits: concurrency must be an integer from 1 to ${MAX_LIMIT}, or null to remove it; got ${JSON.stringify(concurrency)}`);
  }
  const fields: { concurrency?: number | null; rate?: { max: number; perMs: number } | null } = {};
  if (concurrency !== undefined) fields.concurrency = concurrency;
  if (rate !== undefined) fields.rate = rate === null ? null : { max: rate.max, perMs: rate.perMs };
  await setControl(options, "queue", name, fields);
}

/** The queues and types that are paused or limited. */
export async function listControls(options: { dataSource?: DataSource } = {}): Promise<ControlRow[]> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  return readControlRows(dataSource.manager);
}

async function setControl(
  options: { dataSource?: DataSource },
  scope: "queue" | "type",
  name: string,
  fields: { paused?: boolean; concurrency?: number | null; rate?: { max: number; perMs: number } | null },
): Promise<void> {
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  await upsertControl(dataSource.manager, scope, name, fields, await ormqFor(dataSource).clock.now());
}

function checkType(type: unknown, option: string): string {
  return checkFilterText(type, option);
}
