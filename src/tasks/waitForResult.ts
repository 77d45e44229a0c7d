/**
 * `waitForResult` and `waitForResults`: the public waits, over the DataSource client's one
 * ResultWaiter (see resultWaiter.ts for how waits are read).
 */
import type { DataSource } from "typeorm";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import type { WaitOptions, WaitResult } from "../../entities/operations";
import { ormqFor } from "../client/client";
import { resolveDataSource } from "../dataSource";
import { toError } from "../errors";
import { checkTaskId } from "../validation";

/** Options of `waitForResult(id, …)` and `waitForResults`. */
export interface WaitForResultOptions extends WaitOptions {
  /** Default: the DataSource BaseTaskEntity is bound to. */
  dataSource?: DataSource;
}

/**
 * Waits for task `id` to finish: resolves with `{ id, result, deleted }` when it succeeds; rejects
 * with `TaskFailedError` (its last error as `cause`) when it fails for good, `TaskCancelledError`
 * when it is cancelled, `WaitTimeoutError` after `timeoutMs`, or the signal's reason. A task that
 * already finished resolves at once; a missing row resolves as deleted (see WaitResult). The
 * outcome is read at least once before a timeout (`timeoutMs: 0` reads once), and an open wait
 * keeps the process alive. An `id` that no task can have (not a positive 64-bit integer, as a
 * decimal string or a safe integer) is refused with `InvalidOptionError`, naming it.
 */
export function waitForResult<R = unknown>(id: string | number, options: WaitForResultOptions = {}): Promise<WaitResult<R>> {
  let text: string;
  try {
    // Checked here rather than at the database: PostgreSQL fails the whole poll on a value its
    // bigint cannot hold, and SQLite matches nothing (a wait for "0" would resolve as deleted).
    text = checkTaskId(id, "waitForResult(id)");
  } catch (err) {
    return Promise.reject(toError(err));
  }
  const dataSource = resolveDataSource(BaseTaskEntity, options.dataSource);
  try {
    return ormqFor(dataSource).waiter.wait(text, options) as Promise<WaitResult<R>>;
  } catch (err) {
    return Promise.reject(toError(err));
  }
}

/** Waits for each of `ids` (the ids enqueueMany returned): their results in order, or the first rejection. */
export function waitForResults<R = unknown>(ids: readonly (string | number)[], options: WaitForResultOptions = {}): Promise<WaitResult<R>[]> {
  return Promise.all(ids.map((id) => waitForResult<R>(id, options)));
}
