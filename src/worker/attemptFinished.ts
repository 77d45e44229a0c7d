import type { Registry } from "prom-client";
import type { TransientReason } from "../dialect/contract";

/** What `onAttemptFinished` receives. */
export interface AttemptFinished {
  taskId: string;
  type: string;
  queue: string;
  /** How the attempt ended: its summary field (`cancelled` also when a cancel request won). */
  outcome: "succeeded" | "failed" | "retried" | "snoozed" | "cancelled";
  durationMs: number;
}

/**
 * ormq's metrics and the registry that holds them (`createMetrics` in `ormq/metrics`). Declared
 * here, beside what it records, so that a worker's options name it without loading prom-client.
 */
export interface OrmqMetrics {
  readonly registry: Registry;
  /** Records one finished attempt (workers call this; so can custom runners). */
  attemptFinished(event: AttemptFinished): void;
  /** Records a worker's transaction run again after a deadlock or lock wait timeout (MySQL). */
  transientRetry?(reason: TransientReason): void;
}
