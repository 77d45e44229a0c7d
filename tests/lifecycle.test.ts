/**
 * The lifecycle (src/dialect/lifecycle.ts) against both databases: random sequences of what
 * happens to a task (claims, each kind of outcome, cancel requests, expired leases and their
 * rescue, an operator's retry) are driven through the real statements, and after each step the
 * stored status must be the one the lifecycle's rules give, reached by a transition its table
 * allows.
 */
import fc from "fast-check";
import { ChildEntity, type DataSource } from "typeorm";
import { BaseTaskEntity } from "../src";
import { createDialect, type Completion, type Dialect } from "../src/dialect";
import { allowed, statusAfterOutcome, statusAfterRescue, type Transition } from "../src/dialect/lifecycle";
import { cancelPending, requestCancel, requeueFailed } from "../src/dialect/taskWrites";
import type { TaskStatus } from "../entities/status";
import { WITH_MARIADB, memoryLogger, useTestDatabase } from "./support/db";

@ChildEntity("life")
class LifeTask extends BaseTaskEntity {
  static maxAttempts = 2;
  run() {
    return null;
  }
}

type Step =
  | { kind: "claim" }
  | { kind: "outcome"; status: Completion["status"] }
  | { kind: "cancel" }
  | { kind: "expire" }
  | { kind: "retry" };

const steps = fc.array(
  fc.oneof(
    fc.constant<Step>({ kind: "claim" }),
    fc.constantFrom<Completion["status"]>("succeeded", "failed", "pending", "cancelled").map((status): Step => ({ kind: "outcome", status })),
    fc.constant<Step>({ kind: "cancel" }),
    fc.constant<Step>({ kind: "expire" }),
    fc.constant<Step>({ kind: "retry" }),
  ),
  { minLength: 1, maxLength: 12 },
);

/** What the model expects of the task: its status, attempts, limit, and whether a cancel was asked. */
interface Model {
  status: TaskStatus;
  attempts: number;
  maxAttempts: number;
  cancelRequested: boolean;
}

describe.each(WITH_MARIADB)("the lifecycle on %s", (dialect) => {
  let ds: DataSource;
  useTestDatabase(dialect, (o) => (ds = o.ds), [LifeTask]);

  const row = async (id: string) =>
    (await ds.query(`SELECT status, attempts, max_attempts, cancel_requested_at FROM ormq_tasks WHERE id = ${id}`))[0] as {
      status: TaskStatus;
      attempts: unknown;
      max_attempts: unknown;
      cancel_requested_at: unknown;
    };

  it("every stored status follows the lifecycle's rules, through transitions its table allows", async () => {
    await fc.assert(
      fc.asyncProperty(steps, async (plan) => {
        await ds.query(`DELETE FROM ormq_tasks`);
        // Due a second ago: a task saved now is due at the database's now as this host estimates
        // it, which can be a millisecond ahead of the server's own (a claim right after, on
        // MariaDB, once found it not due yet).
        const task = await ds.getRepository(LifeTask).save(LifeTask.create({ runAt: new Date(Date.now() - 1_000) }));
        const id = String(task.id);
        const worker: Dialect = createDialect(ds, "life-worker", memoryLogger().logger);
        const rescuer: Dialect = createDialect(ds, "life-rescuer", memoryLogger().logger);
        const model: Model = { status: "pending", attempts: 0, maxAttempts: 2, cancelRequested: false };
        try {
          for (const step of plan) {
            const before = model.status;
            let by: Transition["by"] | null = null;
            // A second ago: a task the operator retries is due at once, whatever the clocks' skew.
            const now = new Date(Date.now() - 1_000);
            switch (step.kind) {
              case "claim": {
                // Everything is due: a retry or snooze below asks for no delay.
                const claimed = await worker.claim({ types: ["life"], queues: null, limit: 1, leaseMs: 60_000 });
                if (model.status === "pending") {
                  expect(claimed.map((r) => String(r.id))).toEqual([id]);
                  model.status = "running";
                  model.attempts++;
                  by = "claim";
                } else expect(claimed).toEqual([]);
                break;
              }
              case "outcome": {
                const completion: Completion = {
                  id,
                  attempt: model.attempts,
                  status: step.status,
                  result: null,
                  lastError: step.status === "succeeded" ? null : "x",
                  errors: null,
                  delayMs: step.status === "pending" ? 0 : null,
                  refundAttempt: false,
                  event: step.status === "pending" ? "retried" : step.status,
                  history: false,
                  remove: false,
                };
                const applied = await worker.complete([completion]);
                if (model.status === "running") {
                  model.status = statusAfterOutcome(step.status, model.cancelRequested);
                  expect(applied.get(id)).toBe(model.status);
                  by = "outcome";
                } else expect(applied.has(id)).toBe(false); // guarded: not this worker's to finish
                break;
              }
              case "cancel": {
                if (await cancelPending(ds.manager, id, "cancelled: test", now)) {
                  expect(model.status).toBe("pending");
                  model.status = "cancelled";
                  by = "cancel";
                } else if (await requestCancel(ds.manager, id, "cancelled: test", now)) {
                  expect(model.status).toBe("running");
                  expect(model.cancelRequested).toBe(false);
                  model.cancelRequested = true;
                } else {
                  expect(model.status === "running" ? model.cancelRequested : model.status !== "pending").toBe(true);
                }
                break;
              }
              case "expire": {
                // The holder stopped renewing: its lease is over, and the rescue takes the task back.
                await ds.query(`UPDATE ormq_tasks SET locked_until = 1 WHERE id = ${id} AND status = 'running'`);
                const rescued = await rescuer.rescueExpired(10);
                if (model.status === "running") {
                  model.status = statusAfterRescue(model.cancelRequested, model.attempts, model.maxAttempts);
                  expect(rescued).toEqual([{ id, status: model.status }]);
                  by = "rescue";
                } else expect(rescued).toEqual([]);
                break;
              }
              case "retry": {
                const requeued = await requeueFailed(ds.manager, id, now);
                expect(requeued).toBe(model.status === "failed");
                if (requeued) {
                  model.status = "pending";
                  model.cancelRequested = false;
                  model.maxAttempts = Math.max(model.maxAttempts, model.attempts + 1);
                  by = "retry";
                }
                break;
              }
            }
            const stored = await row(id);
            expect(stored.status).toBe(model.status);
            expect(Number(stored.attempts)).toBe(model.attempts);
            expect(Number(stored.max_attempts)).toBe(model.maxAttempts);
            if (before !== model.status) expect({ from: before, to: model.status, by, allowed: allowed(before, model.status, by!) }).toMatchObject({ allowed: true });
          }
        } finally {
          await worker.close();
          await rescuer.close();
        }
      }),
      { numRuns: Number(process.env.FC_NUM_RUNS ?? 100) },
    );
  });
});
