/** What `onAttemptFinished` receives. */
export interface AttemptFinished {
  taskId: string;
  type: string;
  queue: string;
  /** How the attempt ended: its summary field (`cancelled` also when a cancel request won). */
  outcome: "succeeded" | "failed" | "retried" | "snoozed" | "cancelled";
  durationMs: number;
}
