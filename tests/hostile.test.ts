/**
 * Never stuck: odd data, values and settings, tried as an attacker would, on both databases. Each
 * test ends with the same promise: the worker returns, no task is left `running`, and what ormq
 * stored is storable and bounded. The generated (fast-check) part feeds arbitrary UTF-16 text,
 * numbers and option values through run(), results, SnoozeTask, retry policies and worker options;
 * FC_NUM_RUNS raises its run count.
 */
import fc from "fast-check";
import { ChildEntity, Column, type DataSource } from "typeorm";
import { BaseTaskEntity, CancelTask, InvalidOptionError, processForever, processN, SnoozeTask, type WorkerOptions } from "../src";
import { getStats, prune, rescueExpiredTasks } from "../src/admin";
import { MAX_ERRORS_BYTES, MAX_MESSAGE_CHARS, MAX_STACK_CHARS } from "../src/storable";
import { ormqEntities } from "../src";
import { WITH_MARIADB, memoryLogger, openDataSource, type TestDb, useTestDatabase } from "./support/db";
import { expectedSummary, until } from "./support/helpers";

/** What a HostileTask does when it runs, by the key in its `plan` column. */
type Plan =
  | { kind: "throw"; make: () => unknown }
  | { kind: "return"; value: unknown }
  | { kind: "snooze"; ms: number }
  | { kind: "cancel"; reason: unknown }
  | { kind: "policy"; returns: unknown; message: string };

const plans = new Map<string, Plan>();
let planCounter = 0;
function planFor(plan: Plan): string {
  const key = `p${++planCounter}`;
  plans.set(key, plan);
  return key;
}

@ChildEntity("hostile_task")
class HostileTask extends BaseTaskEntity {
  static maxAttempts = 1;
  /** A policy plan's value; anything else retries at once. */
  static retry = (_attempt: number, err: Error) => {
    const plan = [...plans.values()].find((p) => p.kind === "policy" && p.message === err.message);
    return (plan && plan.kind === "policy" ? plan.returns : new Date()) as Date | null;
  };

  @Column({ type: "varchar", length: 32, nullable: true })
  plan!: string | null;

  async run(): Promise<unknown> {
    const plan = plans.get(this.plan ?? "");
    if (!plan) return "no plan";
    switch (plan.kind) {
      case "throw":
        throw plan.make();
      case "return":
        return plan.value;
      case "snooze":
        throw new SnoozeTask(plan.ms);
      case "cancel":
        throw new CancelTask(plan.reason as string);
      case "policy":
        throw new Error(plan.message);
    }
  }
}

interface Row {
  id: string;
  status: string;
  attempts: number;
  last_error: string | null;
  errors: string | null;
  result: string | null;
}

async function rows(ds: DataSource): Promise<Row[]> {
  const raw: Row[] = await ds.query(`SELECT id, status, attempts, last_error, errors, result FROM ormq_tasks ORDER BY id`);
  return raw.map((r) => ({ ...r, id: String(r.id), attempts: Number(r.attempts) }));
}

/** The end state every attack must leave: nothing running, every text stored bounded and parseable. */
function expectSettled(all: Row[]): void {
  for (const r of all) {
    expect({ id: r.id, status: r.status }).toEqual({ id: r.id, status: expect.stringMatching(/^(pending|succeeded|failed|cancelled)$/) });
    if (r.last_error !== null) {
      expect(r.last_error).not.toContain("\u0000");
      expect(r.last_error.length).toBeLessThanOrEqual(MAX_STACK_CHARS + 100);
    }
    if (r.errors !== null) {
      const list: unknown = JSON.parse(r.errors);
      expect(Array.isArray(list)).toBe(true);
      expect(Buffer.byteLength(r.errors)).toBeLessThanOrEqual(MAX_ERRORS_BYTES);
    }
  }
}

describe.each(WITH_MARIADB)("never stuck on %s", (dialect) => {
  let db: TestDb;
  let ds: DataSource;
  const quiet = (more: WorkerOptions = {}): WorkerOptions => ({ dataSource: ds, logger: memoryLogger().logger, ...more });
  const enqueue = (plan: Plan, configure: (t: HostileTask) => void = () => {}) => {
    const task = HostileTask.create({ plan: planFor(plan) });
    configure(task);
    return ds.getRepository(HostileTask).save(task);
  };

  useTestDatabase(dialect, (opened) => ({ db, ds } = opened), [HostileTask]);
  beforeEach(async () => {
    await ds.query(`DELETE FROM ormq_tasks`);
    await ds.query(`DELETE FROM ormq_task_events`);
    plans.clear();
  });

  describe("outcomes the database could refuse", () => {
    it("an error message with a lone surrogate or a NUL ends the task, stored with U+FFFD", async () => {
      await enqueue({ kind: "throw", make: () => new Error("emoji cut in half: \ud83d") });
      await enqueue({ kind: "throw", make: () => new Error("nul \u0000 inside") });
      await enqueue({ kind: "cancel", reason: "bye \udc00 \u0000" });
      expect(await processN(HostileTask, 3, quiet())).toEqual(expectedSummary({ processed: 3, failed: 2, cancelled: 1 }));
      const all = await rows(ds);
      expectSettled(all);
      expect(all.map((r) => r.status)).toEqual(["failed", "failed", "cancelled"]);
      expect(JSON.parse(all[0].errors!)[0].message).toBe("emoji cut in half: \ufffd");
      expect(JSON.parse(all[1].errors!)[0].message).toBe("nul \ufffd inside");
      expect(all[2].last_error).toBe("cancelled: bye \ufffd \ufffd");
    });

    it("well-formed text round-trips exactly", async () => {
      const text = "ünïcödé 🎉 \t tabs, quotes \" ' and \\ backslashes, 中文";
      await enqueue({ kind: "throw", make: () => new Error(text) });
      await enqueue({ kind: "return", value: { text, nul: "a\u0000b", lone: "\ud800" } });
      await processN(HostileTask, 2, quiet());
      const [failed, succeeded] = await rows(ds);
      expect(JSON.parse(failed.errors!)[0].message).toBe(text);
      // Results are JSON, which escapes NUL and lone surrogates: they come back exactly.
      expect(JSON.parse(succeeded.result!)).toEqual({ text, nul: "a\u0000b", lone: "\ud800" });
    });

    it("a 1 MB error message over 4 attempts keeps every record within its caps", async () => {
      const huge = "x".repeat(1_000_000);
      await enqueue({ kind: "throw", make: () => new Error(huge) }, (t) => t.withMaxAttempts(4));
      expect(await processN(HostileTask, 4, quiet())).toEqual(expectedSummary({ processed: 4, retried: 3, failed: 1 }));
      const [row] = await rows(ds);
      expectSettled([row]);
      const records = JSON.parse(row.errors!) as { message: string; stack: string }[];
      expect(records.length).toBe(4);
      for (const r of records) {
        expect(r.message.length).toBeLessThanOrEqual(MAX_MESSAGE_CHARS + 50);
        expect(r.message).toMatch(/more characters cut\]$/);
      }
      const events: { error: string | null }[] = await ds.query(`SELECT error FROM ormq_task_events WHERE task_id = ${row.id}`);
      for (const e of events) expect((e.error ?? "").length).toBeLessThanOrEqual(MAX_STACK_CHARS + 100);
    });

    it("a result over its cap fails the attempt with an error that says so", async () => {
      await enqueue({ kind: "return", value: "y".repeat(2 * 1024 * 1024) });
      expect(await processN(HostileTask, 1, quiet())).toEqual(expectedSummary({ processed: 1, failed: 1 }));
      const [row] = await rows(ds);
      expect(row.result).toBeNull();
      expect(row.last_error).toMatch(/more than the 1048576 bytes a result may hold/);
    });
  });

  describe("values out of range", () => {
    it("SnoozeTask(1e19) fails the attempt with a clear error instead of overflowing the due time", async () => {
      await enqueue({ kind: "snooze", ms: 1e19 });
      expect(await processN(HostileTask, 1, quiet())).toEqual(expectedSummary({ processed: 1, failed: 1 }));
      const [row] = await rows(ds);
      expect(row.last_error).toMatch(/SnoozeTask: delayMs must be a number of milliseconds from 0 to/);
    });

    it("a retry policy that returns a number is a recorded policy failure; the task still retries", async () => {
      await enqueue({ kind: "policy", returns: 12345, message: "policy returns a number" }, (t) => t.withMaxAttempts(2));
      expect(await processN(HostileTask, 1, quiet())).toEqual(expectedSummary({ processed: 1, retried: 1 }));
      const [row] = await rows(ds);
      expect(row.status).toBe("pending");
      const records = JSON.parse(row.errors!) as { message: string; hook?: string; name: string }[];
      expect(records[0].message).toBe("policy returns a number");
      expect(records[1]).toMatchObject({ hook: "retry policy", name: "RetryPolicyError" });
      expect(records[1].message).toMatch(/returned number 12345, not a Date or null/);
    });

    it("an error whose stack is not a string and whose name getter throws is recorded as it can be", async () => {
      await enqueue({
        kind: "throw",
        make: () => {
          const err = new Error("odd error");
          Object.defineProperty(err, "stack", { value: 42 });
          Object.defineProperty(err, "name", {
            get() {
              throw new Error("no name for you");
            },
          });
          return err;
        },
      });
      await enqueue({ kind: "throw", make: () => ({ toString: () => { throw new Error("nope"); } }) });
      expect(await processN(HostileTask, 2, quiet())).toEqual(expectedSummary({ processed: 2, failed: 2 }));
      const all = await rows(ds);
      expectSettled(all);
      expect(JSON.parse(all[0].errors!)[0]).toMatchObject({ name: "Error", message: "odd error" });
      expect(all[1].last_error).toMatch(/non-Error thrown/);
    });

    it.each([
      ["gracePeriodMs", Number.MAX_SAFE_INTEGER],
      ["leaseMs", 2 ** 31],
      ["pollIntervalMs", 1e12],
      ["hookTimeoutMs", Infinity],
      ["concurrency", 1e9],
      ["prefetch", -1],
    ])("option %s = %p is refused with an error naming it", async (option, value) => {
      await expect(processN(HostileTask, 1, quiet({ [option]: value }))).rejects.toThrow(new RegExp(`option \`${option}\` must be an integer from`));
      await expect(processN(HostileTask, 1, quiet({ [option]: value }))).rejects.toBeInstanceOf(InvalidOptionError);
    });

    it("delay() beyond 100 years and prune's olderThan beyond range are refused at the call", async () => {
      expect(() => HostileTask.create({}).delay(1e19)).toThrow(/delay\(ms\) must be a number of milliseconds from 0 to/);
      await expect(prune({ dataSource: ds, olderThan: 1e19 })).rejects.toThrow(/olderThan must be milliseconds from 0 to/);
    });
  });

  describe("the rescue", () => {
    /** A task left running by a dead worker, lease long expired, with `errors` as given. */
    async function orphan(errors: string | null): Promise<string> {
      const task = await enqueue({ kind: "return", value: 1 }, (t) => t.withMaxAttempts(3));
      await ds.query(`UPDATE ormq_tasks SET status = 'running', attempts = 1, locked_by = 'dead-worker', locked_until = 1, errors = $1 WHERE id = $2`.replace(/\$(\d)/g, dialect === "postgres" ? "$$$1" : "?"), [errors, task.id]);
      return task.id;
    }

    it("one row whose errors is not JSON, or holds an escaped NUL, does not stop the rescue of the others", async () => {
      const corrupt = await orphan("{not json");
      const withNul = await orphan(JSON.stringify([{ attempt: 1, at: 1, name: "Error", message: "a\u0000b" }]));
      const notAList = await orphan('{"a":1}');
      const fine = await orphan(null);
      const { logger, lines } = memoryLogger();
      const rescued = await rescueExpiredTasks({ dataSource: ds, logger });
      expect(rescued.map((r) => r.id).sort()).toEqual([corrupt, withNul, notAList, fine].sort());
      const all = await rows(ds);
      expectSettled(all);
      expect(all.every((r) => r.status === "pending")).toBe(true);
      const byId = new Map(all.map((r) => [r.id, r]));
      expect(JSON.parse(byId.get(corrupt)!.errors!)).toEqual([expect.objectContaining({ name: "WorkerLostError" })]);
      expect(JSON.parse(byId.get(withNul)!.errors!).map((e: { message: string }) => e.message)).toEqual(["a\u0000b", "worker dead-worker stopped renewing its lease"]);
      expect(lines.filter((l) => l.msg?.includes("stored errors were not a readable list")).map((l) => (l.obj as { taskId: string }).taskId).sort()).toEqual(
        [corrupt, notAList].sort(),
      );
    });
  });

  describe("outcomes the database refuses anyway", () => {
    // A constraint of the user's that refuses some values: the outcome must not loop, the task
    // must not stay running, and the decision (retry, failure) must stand.
    beforeEach(async () => {
      if (dialect !== "sqlite") {
        await ds.query(`ALTER TABLE ormq_tasks ADD CONSTRAINT hostile_refuse CHECK (COALESCE(last_error, '') NOT LIKE '%REFUSE-ME%' AND COALESCE(result, '') NOT LIKE '%REFUSE-ME%')`);
      } else {
        await ds.query(`CREATE TRIGGER hostile_refuse BEFORE UPDATE ON ormq_tasks
          WHEN COALESCE(NEW.last_error, '') LIKE '%REFUSE-ME%' OR COALESCE(NEW.result, '') LIKE '%REFUSE-ME%'
          BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END`);
      }
    });
    afterEach(async () => {
      if (dialect !== "sqlite") await ds.query(`ALTER TABLE ormq_tasks DROP CONSTRAINT hostile_refuse`);
      else await ds.query(`DROP TRIGGER hostile_refuse`);
    });

    it("a refused retry stays a retry, a refused success becomes a failure, and the rest of the batch is written", async () => {
      const retry = await enqueue({ kind: "throw", make: () => new Error("REFUSE-ME please") }, (t) => t.withMaxAttempts(3));
      const success = await enqueue({ kind: "return", value: "REFUSE-ME as a result" });
      const others = await Promise.all(Array.from({ length: 8 }, (_, i) => enqueue({ kind: "return", value: i })));
      const { logger, lines } = memoryLogger();
      const summary = await processN(HostileTask, 10, { dataSource: ds, logger, concurrency: 10 });
      expect(summary).toMatchObject({ processed: 10, succeeded: 8, failed: 1, retried: 1 });
      const byId = new Map((await rows(ds)).map((r) => [r.id, r]));
      expectSettled([...byId.values()]);
      expect(byId.get(retry.id)).toMatchObject({ status: "pending", attempts: 1, last_error: expect.stringMatching(/^OutcomeWriteError: the database refused this attempt's outcome \(retried\)/) });
      expect(byId.get(success.id)).toMatchObject({ status: "failed", result: null, last_error: expect.stringMatching(/^OutcomeWriteError: .*\(succeeded\)/) });
      for (const t of others) expect(byId.get(t.id)!.status).toBe("succeeded");
      expect(lines.filter((l) => l.msg?.includes("refused this task's outcome for its content")).length).toBe(2);
    });

    if (dialect !== "sqlite") {
      it("an outcome failing for another reason is given up after a few tries: processN returns, the rescue requeues the task", async () => {
        if (dialect === "postgres") {
          await ds.query(`CREATE FUNCTION hostile_boom() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF NEW.last_error LIKE '%BOOM%' THEN RAISE EXCEPTION 'boom from a trigger'; END IF; RETURN NEW; END $$`);
          await ds.query(`CREATE TRIGGER hostile_boom BEFORE UPDATE ON ormq_tasks FOR EACH ROW EXECUTE FUNCTION hostile_boom()`);
        } else {
          await ds.query(`CREATE TRIGGER hostile_boom BEFORE UPDATE ON ormq_tasks FOR EACH ROW
            BEGIN IF NEW.last_error LIKE '%BOOM%' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'boom from a trigger'; END IF; END`);
        }
        try {
          const task = await enqueue({ kind: "throw", make: () => new Error("BOOM") }, (t) => t.withMaxAttempts(3));
          const { logger, lines } = memoryLogger();
          expect(await processN(HostileTask, 1, { dataSource: ds, logger, leaseMs: 1_000 })).toEqual(expectedSummary({}));
          expect(lines.some((l) => l.level === "error" && l.msg?.includes("giving them up") && (l.obj as { statement?: string }).statement === "complete")).toBe(true);
          // Let go, not held: no heartbeat renews its lease, and the rescue takes it back.
          await until("the rescue requeues it", async () => (await rescueExpiredTasks({ dataSource: ds, logger })).some((r) => r.id === task.id));
          expect((await rows(ds))[0]).toMatchObject({ status: "pending", last_error: expect.stringMatching(/^WorkerLostError/) });
        } finally {
          if (dialect === "postgres") {
            await ds.query(`DROP TRIGGER hostile_boom ON ormq_tasks`);
            await ds.query(`DROP FUNCTION hostile_boom()`);
          } else {
            await ds.query(`DROP TRIGGER hostile_boom`);
          }
        }
      });
    }
  });

  describe("workers' rows", () => {
    it("prune with olderThan 0 keeps a running worker's row, and a deleted row comes back at the next heartbeat", async () => {
      const stop = new AbortController();
      const running = processForever(HostileTask, quiet({ signal: stop.signal, leaseMs: 1_000, heartbeatIntervalMs: 50, pollIntervalMs: 50 }));
      try {
        await until("the worker is registered", async () => (await getStats({ dataSource: ds })).liveWorkers === 1);
        await prune({ dataSource: ds, olderThan: 0 }); // stopped workers of earlier tests go, this one stays
        expect((await getStats({ dataSource: ds })).liveWorkers).toBe(1);
        // Gone at this instant; only the worker's own heartbeat can write it again.
        await ds.query(`DELETE FROM ormq_workers`);
        await until("the heartbeat writes the row again", async () => (await getStats({ dataSource: ds })).liveWorkers === 1);
      } finally {
        stop.abort();
        await running;
      }
    });
  });

  if (dialect === "postgres") {
    describe("small pools and session state", () => {
      it.each([1, 2])("a worker on a pool of %i connection(s) drains its tasks", async (max) => {
        const small = await openDataSource(db, [...(ormqEntities as never[]), HostileTask], { extra: { max } } as never);
        try {
          for (let i = 0; i < 20; i++) await enqueue({ kind: "return", value: i });
          const summary = await processN(HostileTask, 20, { dataSource: small, logger: memoryLogger().logger, concurrency: 5 });
          expect(summary).toEqual(expectedSummary({ processed: 20, succeeded: 20 }));
          expectSettled(await rows(ds));
        } finally {
          await small.destroy();
        }
      });

      it("a wait for a pool connection longer than the lease is logged, and the worker goes on once one frees", async () => {
        const one = await openDataSource(db, [...(ormqEntities as never[]), HostileTask], { extra: { max: 1 } } as never);
        const pool = (one.driver as unknown as { master: import("pg").Pool }).master;
        try {
          await enqueue({ kind: "return", value: 1 });
          const held = await pool.connect(); // the application holds the pool's only connection
          const { logger, lines } = memoryLogger();
          const run = processN(HostileTask, 1, { dataSource: one, logger, leaseMs: 1_000 });
          await until("the wait is logged", () => lines.some((l) => l.level === "warn" && !!l.msg?.includes("waiting for a PostgreSQL pool connection")));
          expect(lines.find((l) => l.msg?.includes("waiting for a PostgreSQL pool connection"))!.obj).toMatchObject({ poolSize: 1, waitedMs: 1_000 });
          held.release();
          expect(await run).toEqual(expectedSummary({ processed: 1, succeeded: 1 }));
        } finally {
          await one.destroy();
        }
      });

      it("the claim's asynchronous commit does not outlive its transaction", async () => {
        const name = new URL(db.url).pathname.slice(1);
        // The test server runs with synchronous_commit off: a database default of on makes a leak visible.
        await ds.query(`ALTER DATABASE ${name} SET synchronous_commit = on`);
        const one = await openDataSource(db, [...(ormqEntities as never[]), HostileTask], { extra: { max: 1 } } as never);
        try {
          for (let i = 0; i < 10; i++) await enqueue({ kind: "return", value: i });
          expect((await processN(HostileTask, 10, { dataSource: one, logger: memoryLogger().logger })).succeeded).toBe(10);
          // The pool's only connection is the one every claim ran on.
          const [setting] = await one.query(`SELECT current_setting('synchronous_commit') AS now, reset_val FROM pg_settings WHERE name = 'synchronous_commit'`);
          expect(setting).toEqual({ now: "on", reset_val: "on" });
        } finally {
          await one.destroy();
          await ds.query(`ALTER DATABASE ${name} RESET synchronous_commit`);
        }
      });
    });
  }

  describe("generated input", () => {
    const numRuns = Number(process.env.FC_NUM_RUNS ?? 15);
    const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
    const text = fc.oneof(
      { weight: 4, arbitrary: fc.string({ unit: codeUnit, maxLength: 40 }) },
      { weight: 1, arbitrary: fc.string({ unit: codeUnit, minLength: 5_000, maxLength: 20_000 }) },
      { weight: 2, arbitrary: fc.string({ unit: "grapheme", maxLength: 40 }) },
    );
    const number = fc.oneof(
      fc.double(),
      fc.integer(),
      fc.constantFrom(NaN, Infinity, -Infinity, 1e19, -1, 0.5, 2 ** 31, Number.MAX_SAFE_INTEGER, 8.64e15, -0),
    );
    const plan: fc.Arbitrary<Plan> = fc.oneof(
      text.map((message) => ({ kind: "throw" as const, make: () => new Error(message) })),
      fc.record({ name: fc.oneof(text, number), stack: fc.oneof(text, number, fc.constant(undefined)), message: text }).map((f) => ({
        kind: "throw" as const,
        make: () => Object.assign(new Error(), { name: f.name, stack: f.stack, message: f.message }),
      })),
      fc.anything().map((value) => ({ kind: "throw" as const, make: () => value })),
      fc.oneof(text, number, fc.jsonValue(), fc.anything()).map((value) => ({ kind: "return" as const, value })),
      number.map((ms) => ({ kind: "snooze" as const, ms })),
      text.map((reason) => ({ kind: "cancel" as const, reason })),
      fc.tuple(fc.oneof(number, text, fc.date(), fc.constant(null)), fc.uuid()).map(([returns, id]) => ({ kind: "policy" as const, returns, message: `policy ${id}` })),
    );

    it("whatever run() throws or returns, and whatever the policy says, the task ends and processN returns", async () => {
      await fc.assert(
        fc.asyncProperty(plan, async (p) => {
          await ds.query(`DELETE FROM ormq_tasks`);
          await enqueue(p, (t) => t.withMaxAttempts(2));
          const summary = await processN(HostileTask, 1, quiet());
          expect(summary.processed).toBe(1);
          expectSettled(await rows(ds));
        }),
        { numRuns },
      );
    });

    // Valid values a worker can run with in a test, or values that are plainly invalid. (A valid
    // but tiny lease, 2 ms say, would make any test flaky; such values are not generated here.)
    const invalid = fc.oneof(
      fc.double().filter((d) => !Number.isInteger(d)),
      fc.integer({ max: -1 }),
      fc.constantFrom(2 ** 31, 1e19, Number.MAX_SAFE_INTEGER),
    );
    const optionValue = (valid: fc.Arbitrary<number>) => fc.oneof(valid, invalid, fc.constant(undefined));
    const options = fc.record(
      {
        concurrency: optionValue(fc.integer({ min: 1, max: 50 })),
        prefetch: optionValue(fc.integer({ min: 0, max: 50 })),
        batchSize: optionValue(fc.integer({ min: 1, max: 100 })),
        leaseMs: optionValue(fc.integer({ min: 1_000, max: 60_000 })),
        pollIntervalMs: optionValue(fc.integer({ min: 1, max: 1_000 })),
        gracePeriodMs: optionValue(fc.integer({ min: 0, max: 1_000 })),
        hookTimeoutMs: optionValue(fc.integer({ min: 100, max: 10_000 })),
        maxAbandonedRuns: optionValue(fc.integer({ min: 1, max: 10 })),
      },
      { requiredKeys: [] },
    );

    it("generated worker options are refused with an error naming one of them, or run the task", async () => {
      await fc.assert(
        fc.asyncProperty(options, async (given) => {
          await ds.query(`DELETE FROM ormq_tasks`);
          await enqueue({ kind: "return", value: "ok" });
          const defined = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) as WorkerOptions;
          let summary;
          try {
            summary = await processN(HostileTask, 1, quiet(defined));
          } catch (err) {
            expect(err).toBeInstanceOf(InvalidOptionError);
            const named = Object.keys(defined).some((k) => (err as Error).message.includes(`\`${k}\``));
            expect({ named, message: (err as Error).message }).toEqual({ named: true, message: expect.any(String) });
            return;
          }
          expect(summary).toEqual(expectedSummary({ processed: 1, succeeded: 1 }));
          expectSettled(await rows(ds));
        }),
        { numRuns },
      );
    });
  });
});
