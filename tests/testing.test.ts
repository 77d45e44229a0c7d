/**
 * `ormq/testing` (run what a test enqueued, assert on what is enqueued, a fresh database per test
 * file) on both databases; and the package's entry points: what each holds, and that importing
 * `ormq` sets nothing up until a DataSource with its subscriber is built.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { AssertionError } from "node:assert";
import { assertEnqueued, createTestDatabase, enqueuedTasks, refuteEnqueued, runEnqueued, type TestDatabase } from "../src/testing";
import { RecordRun, RunLog, ScriptedTask, SendEmail, testEntities } from "./fixtures/tasks";
import { WITH_MARIADB, memoryLogger } from "./support/db";
import { trackDataSource } from "./support/leaks";

describe.each(WITH_MARIADB)("ormq/testing on %s", (dialect) => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase({ entities: testEntities, url: dialect === "postgres" ? process.env.ORMQ_TEST_PG_URL : undefined });
    trackDataSource(db.dataSource);
  });
  afterAll(() => db.drop());

  it("asserts what is enqueued, by class and columns, and runs it in the test", async () => {
    await SendEmail.create({ to: "ada@example.com" }).save();
    await RecordRun.create({ label: "first" }).save();
    const [email] = await assertEnqueued(SendEmail, { to: "ada@example.com" });
    expect(email).toBeInstanceOf(SendEmail);
    await refuteEnqueued(SendEmail, { to: "bob@example.com" });
    const missing = await assertEnqueued(SendEmail, { to: "bob@example.com" }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(AssertionError);
    expect(String((missing as Error).message)).toMatch(/expected a pending SendEmail task matching \{"to":"bob@example.com"\}; pending: .*ada@example.com/);
    await expect(refuteEnqueued(SendEmail, { to: "ada@example.com" })).rejects.toThrow(/expected no pending SendEmail task .* found 1/);

    const summary = await runEnqueued(RecordRun);
    expect(summary).toMatchObject({ succeeded: 1, failed: 0 });
    expect(await db.dataSource.getRepository(RunLog).count()).toBe(1);
    await refuteEnqueued(RecordRun);
    expect(await enqueuedTasks(SendEmail)).toHaveLength(1); // another class's task is left alone
    expect((await runEnqueued()).processed).toBeGreaterThanOrEqual(1); // every class
    expect(await enqueuedTasks(SendEmail)).toHaveLength(0);
  });

  it("runs retries that are due at once, and leaves a task due later pending", async () => {
    const failing = await ScriptedTask.create({ script: "fail" }).save();
    const snoozing = await ScriptedTask.create({ script: "snooze" }).save();
    const summary = await runEnqueued(ScriptedTask, { logger: memoryLogger().logger });
    // ScriptedTask retries at once (fixedDelay(0)): both attempts run in the one call; the snooze
    // asks for an hour, so that task waits.
    expect(summary).toMatchObject({ retried: 1, failed: 1, snoozed: 1 });
    expect((await enqueuedTasks(ScriptedTask)).map((t) => t.id)).toEqual([snoozing.id]);
    await refuteEnqueued(ScriptedTask, { id: failing.id });
  });

  it("refuses a url that is not a PostgreSQL one", async () => {
    await expect(createTestDatabase({ url: "mysql://x" })).rejects.toThrow(/url must be a postgres:\/\/ URL/);
  });
});

describe("the package's entry points", () => {
  const root = join(__dirname, "..");
  const node = (code: string) => execFileSync(process.execPath, ["-e", code], { cwd: root, encoding: "utf8" });

  it("are ormq, ormq/admin, ormq/dashboard, ormq/metrics and ormq/testing, each with its own names", () => {
    expect(existsSync(join(root, "dist", "src", "index.js"))).toBe(true); // npm test builds first
    const names = JSON.parse(
      node(`const n = (m) => Object.keys(require(m)).sort(); console.log(JSON.stringify({ root: n("ormq"), admin: n("ormq/admin"), dashboard: n("ormq/dashboard"), metrics: n("ormq/metrics"), testing: n("ormq/testing") }))`),
    ) as Record<string, string[]>;
    expect(names.root).toEqual(expect.arrayContaining(["BaseTaskEntity", "processN", "processForever", "enqueueMany", "waitForResult", "ormqFor", "OrmqError", "WorkerLostError", "exponentialBackoff"]));
    // The operators' functions, the dashboard, the metrics and internals are not in the root.
    for (const name of ["cancelTask", "listTasks", "prune", "ormqDashboard", "createMetrics", "MetaEntity", "RateClaimEntity", "ControlEntity", "TaskSubscriber", "WORKER_SETTINGS", "LIST_PAGE_SCAN", "OutcomeWriteError"]) {
      expect(names.root).not.toContain(name);
    }
    expect(names.root.length).toBeLessThanOrEqual(45);
    expect(names.admin).toEqual(expect.arrayContaining(["cancelTask", "retryTask", "retryFailed", "listTasks", "showTask", "getStats", "prune", "pauseQueue", "createSchedule", "deleteTasks"]));
    expect(names.dashboard).toEqual(["ormqDashboard"]);
    expect(names.metrics).toEqual(expect.arrayContaining(["createMetrics"]));
    expect(names.testing).toEqual(["assertEnqueued", "createTestDatabase", "enqueuedTasks", "refuteEnqueued", "runEnqueued"]);
  });

  it("importing ormq sets nothing up and loads no admin, dashboard or metrics module", () => {
    const out = JSON.parse(
      node(
        `require("ormq");` +
          `const { AbstractSqliteDriver } = require("typeorm/driver/sqlite-abstract/AbstractSqliteDriver");` +
          `const loaded = Object.keys(require.cache);` +
          `console.log(JSON.stringify({ patched: !!AbstractSqliteDriver.prototype[Symbol.for("ormq.sqliteIntegerKey")], admin: loaded.some((f) => f.includes("/dist/src/admin/")), prom: loaded.some((f) => f.includes("/node_modules/prom-client/")), hono: loaded.some((f) => f.includes("/node_modules/hono/")) }))`,
      ),
    ) as Record<string, boolean>;
    expect(out).toEqual({ patched: false, admin: false, prom: false, hono: false });
  });
});
