import { Client } from "pg";
import type { DataSource } from "typeorm";
import { enqueueMany, processForever, waitForResults, type ProcessSummary } from "../src";
import { createSchedule, deleteSchedule } from "../src/admin";
import { createDialect } from "../src/dialect";
import { RecordRun, RunLog, testEntities } from "./fixtures/tasks";
import { memoryLogger, openDataSource, type TestDb } from "./support/db";
import { until } from "./support/helpers";
import { startPgBouncer, SYSTEM_TESTS } from "./support/pgbouncer";
import { restartablePostgres } from "./support/pgServer";
import { spawnWorker } from "./support/processes";

if (!SYSTEM_TESTS) {
  console.log("tests/pooler.test.ts skipped: it runs a real PgBouncer (the pgbouncer package); set ORMQ_SYSTEM_TESTS=1, as .ci/run does");
}
const describeSystem = SYSTEM_TESTS ? describe : describe.skip;

/**
 * A worker behind a real PgBouncer in transaction mode, on a PostgreSQL of its own started with the
 * server's defaults (synchronous_commit on, so a setting leaked to another client would show).
 */
describeSystem("PostgreSQL behind PgBouncer in transaction mode", () => {
  let pg: Awaited<ReturnType<typeof restartablePostgres>>;
  let bouncer: Awaited<ReturnType<typeof startPgBouncer>>;
  /** A direct connection, to set up and check. */
  let ds: DataSource;
  const direct = (): TestDb => ({ dialect: "postgres", url: pg.url, drop: async () => {} });
  const through = (url: string): TestDb => ({ dialect: "postgres", url, drop: async () => {} });

  beforeAll(async () => {
    pg = await restartablePostgres();
    bouncer = await startPgBouncer({ port: pg.port });
    ds = await openDataSource(direct(), testEntities);
  }, 60_000);
  afterAll(async () => {
    await ds?.destroy();
    await bouncer?.stop();
    await pg?.exit();
  });
  beforeEach(async () => {
    await ds.query(`DELETE FROM ormq_tasks`);
    await ds.query(`DELETE FROM ormq_task_events`);
    await ds.query(`DELETE FROM test_runs`);
  });

  it("is transaction pooling: a statement prepared in one transaction is gone in the next", async () => {
    const a = new Client({ connectionString: bouncer.url });
    const b = new Client({ connectionString: bouncer.url });
    await a.connect();
    await b.connect();
    try {
      await a.query("PREPARE ormq_probe AS SELECT 1");
      // B's transaction takes the server connection A's just released (PgBouncer reuses the
      // last one first), so A's next statement runs on another.
      await b.query("BEGIN");
      await b.query("SELECT 1");
      await expect(a.query("EXECUTE ormq_probe")).rejects.toThrow(/prepared statement "ormq_probe" does not exist/);
      await b.query("COMMIT");
    } finally {
      await a.end();
      await b.end();
    }
  });

  it("four worker processes with `pooler: \"transaction\"` drain 5,000 tasks through it: each once, nothing logged, no session setting leaked", async () => {
    const TASKS = 5_000;
    await enqueueMany(Array.from({ length: TASKS }, (_, i) => RecordRun.create({ label: `t${i}` })), { dataSource: ds });
    const workers = Array.from({ length: 4 }, () =>
      spawnWorker({ ORMQ_DATABASE_URL: bouncer.url, ORMQ_POOLER: "transaction", ORMQ_CONCURRENCY: "10", ORMQ_LOG_LEVEL: "warn" }),
    );
    try {
      await Promise.all(workers.map((w) => w.ready));
      for (const w of workers) w.child.stdin!.write("go\n");
      const results = await Promise.all(workers.map((w) => w.exited));
      // Nothing at warn or above on any worker's log, and every one ended cleanly.
      for (const r of results) expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      expect(results.reduce((sum, r) => sum + (r.summary as ProcessSummary).succeeded, 0)).toBe(TASKS);
    } finally {
      for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGKILL");
    }
    const runs = await ds.getRepository(RunLog).find();
    expect(runs).toHaveLength(TASKS);
    expect(new Set(runs.map((r) => r.taskId)).size).toBe(TASKS);
    const [counts] = await ds.query(
      `SELECT COUNT(*) FILTER (WHERE status = 'succeeded' AND attempts = 1) AS once, COUNT(*) AS all_tasks FROM ormq_tasks`,
    );
    expect([Number(counts.once), Number(counts.all_tasks)]).toEqual([TASKS, TASKS]);
    // One history row per attempt, carrying its start.
    const [started] = await ds.query(`SELECT COUNT(*) AS n, COUNT(DISTINCT task_id) AS tasks FROM ormq_task_events WHERE kind = 'succeeded' AND started_at IS NOT NULL`);
    expect([Number(started.n), Number(started.tasks)]).toEqual([TASKS, TASKS]);

    // Every server connection of the pool, each held by its own client at once: none kept a
    // setting a worker made (the claim's synchronous_commit is local to its transaction).
    const clients = Array.from({ length: 4 }, () => new Client({ connectionString: bouncer.url }));
    try {
      for (const c of clients) await c.connect();
      for (const c of clients) await c.query("BEGIN");
      const settings = await Promise.all(
        clients.map(async (c) => (await c.query(`SELECT current_setting('synchronous_commit') AS now, reset_val, pg_backend_pid() AS pid FROM pg_settings WHERE name = 'synchronous_commit'`)).rows[0]),
      );
      expect(new Set(settings.map((s) => s.pid)).size).toBe(4);
      for (const s of settings) expect({ now: s.now, reset: s.reset_val }).toEqual({ now: "on", reset: "on" });
      for (const c of clients) await c.query("COMMIT");
    } finally {
      for (const c of clients) await c.end();
    }
  }, 180_000);

  it("without the setting, the first lost prepared statement switches the worker to unnamed statements, with one warning", async () => {
    // One server connection and one client connection: what the worker prepares is on that server
    // connection until another client's DEALLOCATE removes it, as a pooler handing the server
    // connection to someone else would.
    const single = await startPgBouncer({ port: pg.port }, { poolSize: 1 });
    const viaPooler = await openDataSource(through(single.url), testEntities, { migrationsRun: false, extra: { max: 1 } });
    const log = memoryLogger();
    const dialect = createDialect(viaPooler, "pooler-test-worker", log.logger);
    const other = new Client({ connectionString: single.url });
    await other.connect();
    try {
      expect(await dialect.cancelRequested(["1"])).toEqual([]); // prepared, named
      await other.query("DEALLOCATE ALL");
      expect(await dialect.cancelRequested(["1"])).toEqual([]); // lost: answered unnamed
      await other.query("DEALLOCATE ALL");
      expect(await dialect.cancelRequested(["2"])).toEqual([]);
      const warnings = log.lines.filter((l) => l.level === "warn");
      expect(warnings).toHaveLength(1);
      expect(warnings[0].msg).toMatch(/transaction-mode pooler/);

      // With `pooler: "transaction"` nothing is named in the first place: no warning at all.
      const quiet = memoryLogger();
      const declared = createDialect(viaPooler, "pooler-test-worker-2", quiet.logger, { pooler: "transaction" });
      expect(await declared.cancelRequested(["1"])).toEqual([]);
      await other.query("DEALLOCATE ALL");
      expect(await declared.cancelRequested(["1"])).toEqual([]);
      expect(quiet.lines.filter((l) => l.level === "warn")).toEqual([]);
      await declared.close();
    } finally {
      await other.end();
      await dialect.close();
      await viaPooler.destroy();
      await single.stop();
    }
  });

  it("with `listenUrl` a worker behind the pooler is woken by an enqueue elsewhere; without it, it says it polls", async () => {
    const viaPooler = await openDataSource(through(bouncer.url), testEntities, { migrationsRun: false });
    const log = memoryLogger();
    const controller = new AbortController();
    // A poll interval of a minute: only a wake-up can start the task within the test's time.
    const worker = processForever(RecordRun, {
      dataSource: viaPooler,
      pooler: "transaction",
      listenUrl: pg.url,
      pollIntervalMs: 60_000,
      signal: controller.signal,
      logger: log.logger,
    });
    try {
      await until("the worker listens", () => log.lines.some((l) => l.msg === "worker started"));
      await ds.getRepository(RecordRun).save(RecordRun.create({ label: "woken" }));
      await until("the task ran", async () => (await ds.getRepository(RunLog).count()) === 1, 10_000);
    } finally {
      controller.abort();
      await worker;
    }
    const unheard = memoryLogger();
    const polling = new AbortController();
    const second = processForever(RecordRun, { dataSource: viaPooler, pooler: "transaction", signal: polling.signal, logger: unheard.logger });
    try {
      await until("the worker started", () => unheard.lines.some((l) => l.msg === "worker started"));
      expect(unheard.lines.some((l) => /no LISTEN, polling/.test(l.msg ?? ""))).toBe(true);
    } finally {
      polling.abort();
      await second;
      await viaPooler.destroy();
    }
  });

  it("waits for results, and a schedule ticks, through the pooler", async () => {
    const viaPooler = await openDataSource(through(bouncer.url), testEntities, { migrationsRun: false }, false);
    const controller = new AbortController();
    const worker = processForever(RecordRun, { dataSource: viaPooler, pooler: "transaction", pollIntervalMs: 100, signal: controller.signal, logger: memoryLogger().logger });
    try {
      const ids = await enqueueMany(Array.from({ length: 20 }, (_, i) => RecordRun.create({ label: `w${i}` })), { dataSource: viaPooler });
      const results = await waitForResults<{ label: string }>(ids, { dataSource: viaPooler, timeoutMs: 20_000 });
      expect(results.map((r) => r.result!.label)).toEqual(ids.map((_, i) => `w${i}`));
      await createSchedule({ dataSource: viaPooler, name: "pooled", type: RecordRun, cron: "* * * * * *", data: { label: "tick" } });
      await until("two ticks ran", async () => (await ds.getRepository(RecordRun).countBy({ scheduleName: "pooled", status: "succeeded" })) >= 2, 15_000);
    } finally {
      await deleteSchedule("pooled", { dataSource: ds });
      controller.abort();
      await worker;
      await viaPooler.destroy();
    }
    const ticks = (await ds.getRepository(RecordRun).find({ where: { scheduleName: "pooled" }, order: { runAt: "ASC" } })).map((t) => t.runAt.getTime());
    for (let i = 1; i < ticks.length; i++) expect(ticks[i] - ticks[i - 1]).toBe(1000);
  });
});
