import { setTimeout as sleep } from "node:timers/promises";
import type { DataSource } from "typeorm";
import { BaseTaskEntity, enqueueMany } from "../src";
import { RecordNode, RecordRun, RunLog, testEntities } from "./fixtures/tasks";
import { createMariaDbTestDb, WITH_MARIADB, openDataSource, type TestDb, useTestDatabase } from "./support/db";
import { until } from "./support/helpers";
import { startMariaDb } from "./support/mariadb";
import { restartablePostgres } from "./support/pgServer";
import { spawnWorker, type WorkerProcess } from "./support/processes";

/**
 * Short leases so that a killed worker's tasks come back within seconds. Not too short: on a busy
 * 2-core machine, TypeORM's synchronous SQLite busy wait can hold a live worker's event loop (and
 * its heartbeat) for a second or more, and a lease that expires under a live worker means a
 * second run.
 */
const FAST = {
  ORMQ_TEST_FOREVER: "1",
  ORMQ_LEASE_MS: "4000",
  ORMQ_HEARTBEAT_INTERVAL_MS: "400",
  ORMQ_RESCUE_INTERVAL_MS: "300",
  ORMQ_POLL_INTERVAL_MS: "200",
};

async function startWorker(env: Record<string, string>): Promise<WorkerProcess> {
  const worker = spawnWorker(env);
  await worker.ready;
  worker.child.stdin!.write("go\n");
  return worker;
}

async function stopAll(workers: WorkerProcess[]) {
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill("SIGTERM");
  return Promise.all(workers.map((w) => w.exited));
}

describe.each(WITH_MARIADB)("chaos on %s", (dialect) => {
  let db: TestDb;
  let ds: DataSource;
  useTestDatabase(dialect, (opened) => ({ db, ds } = opened), testEntities);
  beforeEach(async () => {
    await ds.query(`DELETE FROM ormq_tasks`);
    await ds.query(`DELETE FROM ormq_task_events`); // no foreign key cascades them
    await ds.query(`DELETE FROM test_runs`);
    await ds.query(`DELETE FROM ormq_task_dependencies`);
  });

  it("four workers drain 2,000 tasks while one is killed with SIGKILL every 0.2 s or so", async () => {
    // A kill every 0.2 s or so (counted from the replacement's start) through the whole drain,
    // and no more tasks than that needs: the drain under fire is the suite's longest test.
    const TASKS = 2_000;
    await ds.getRepository(RecordRun).save(Array.from({ length: TASKS }, (_, i) => RecordRun.create({ label: `c${i}` })), { chunk: 500 });
    const env = { ORMQ_DATABASE_URL: db.url, ORMQ_CONCURRENCY: "10", ...FAST };
    let live = await Promise.all(Array.from({ length: 4 }, () => startWorker(env)));
    const all = [...live];
    const killed = new Set<number>();
    const succeeded = () => ds.getRepository(RecordRun).countBy({ status: "succeeded" });
    const deadline = Date.now() + 60_000;
    try {
      while ((await succeeded()) < TASKS) {
        if (Date.now() > deadline) throw new Error(`drain did not finish: ${await succeeded()} of ${TASKS}`);
        // The interval counts from when the replacement is ready, so kills hit working workers.
        await sleep(200);
        const victim = live[Math.floor(Math.random() * live.length)];
        killed.add(victim.child.pid!);
        victim.child.kill("SIGKILL");
        await victim.exited;
        const replacement = await startWorker(env);
        live = [...live.filter((w) => w !== victim), replacement];
        all.push(replacement);
      }
    } finally {
      await stopAll(live);
    }
    expect(killed.size).toBeGreaterThan(0);
    console.log(`chaos (${dialect}): ${killed.size} workers killed during the drain of ${TASKS}`);

    const tasks = await ds.getRepository(RecordRun).find();
    expect(tasks.filter((t) => t.status !== "succeeded")).toEqual([]);
    const runs = await ds.getRepository(RunLog).find({ order: { id: "ASC" } });
    const runsByTask = new Map<string, RunLog[]>();
    for (const run of runs) runsByTask.set(run.taskId, [...(runsByTask.get(run.taskId) ?? []), run]);
    // Every task's run is on record exactly once: RecordRun writes it with ctx.transaction, in the
    // transaction of its success, so an attempt killed before its commit left nothing, and one
    // whose task was rescued meanwhile had its commit refused.
    expect(tasks.filter((t) => runsByTask.get(t.id)?.length !== 1).map((t) => [t.id, runsByTask.get(t.id)?.length ?? 0])).toEqual([]);
    expect(runs).toHaveLength(TASKS);
    // The record is the succeeded attempt's: its worker and attempt.
    const byId = new Map(tasks.map((t) => [t.id, t]));
    expect(runs.filter((r) => r.attempt !== byId.get(r.taskId)!.attempts)).toEqual([]);
    // Some attempts were cut short (killed in flight, or before they started): their tasks ran again.
    console.log(`chaos (${dialect}): ${tasks.filter((t) => t.attempts > 1).length} tasks took more than one attempt`);
  }, 120_000);

  it("a 3-level workflow drains while a worker is killed with SIGKILL every 0.3 s or so: each node runs once, after its dependencies, and its children exist once", async () => {
    // Roots; middles that each wait for two roots and give two children with their success;
    // sinks that each wait for five middles. ORMQ_CHAOS_WORKFLOW_TASKS=5000 runs the large one.
    const NODES = Number(process.env.ORMQ_CHAOS_WORKFLOW_TASKS ?? 300);
    const roots = Array.from({ length: Math.round(NODES * 0.3) }, (_, i) => RecordNode.create({ label: `r${i}` }));
    const pick = <T>(list: T[], n: number) => Array.from({ length: n }, () => list[Math.floor(Math.random() * list.length)]);
    const middles = Array.from({ length: Math.round(NODES * 0.5) }, (_, i) => RecordNode.create({ label: `m${i}`, childCount: 2, dependsOn: pick(roots, 2) }));
    const sinks = Array.from({ length: NODES - roots.length - middles.length }, (_, i) => RecordNode.create({ label: `s${i}`, dependsOn: pick(middles, 5) }));
    await enqueueMany([...roots, ...middles, ...sinks], { dataSource: ds });
    const TOTAL = NODES + middles.length * 2;
    const env = { ORMQ_DATABASE_URL: db.url, ORMQ_CONCURRENCY: "10", ...FAST };
    let live = await Promise.all(Array.from({ length: 4 }, () => startWorker(env)));
    let kills = 0;
    const succeeded = () => ds.getRepository(BaseTaskEntity).countBy({ status: "succeeded" });
    const deadline = Date.now() + Math.max(90_000, NODES * 60);
    try {
      while ((await succeeded()) < TOTAL) {
        if (Date.now() > deadline) {
          const left = await ds.query(`SELECT status, COUNT(*) AS n FROM ormq_tasks WHERE status <> 'succeeded' GROUP BY status`);
          throw new Error(`the workflow did not finish: ${await succeeded()} of ${TOTAL} succeeded; left: ${JSON.stringify(left)}`);
        }
        await sleep(300);
        const victim = live[Math.floor(Math.random() * live.length)];
        victim.child.kill("SIGKILL");
        kills++;
        await victim.exited;
        live = [...live.filter((w) => w !== victim), await startWorker(env)];
      }
    } finally {
      await stopAll(live);
    }
    console.log(`chaos (${dialect}): a workflow of ${NODES} nodes and ${middles.length * 2} children drained through ${kills} SIGKILLs`);

    const nodes = await ds.getRepository(RecordNode).find();
    expect(nodes).toHaveLength(NODES);
    expect(nodes.filter((n) => (n.result as { early: string[] }).early.length > 0).map((n) => n.id)).toEqual([]);
    // Each attempt that succeeded started after every dependency had finished (the database's clock).
    const finishedAt = new Map(nodes.map((n) => [n.id, n.finishedAt!.getTime()]));
    const edges: { task_id: string | number; depends_on: string | number; state: string }[] = await ds.query(`SELECT task_id, depends_on, state FROM ormq_task_dependencies`);
    expect(edges.filter((e) => e.state !== "succeeded")).toEqual([]);
    const byId = new Map(nodes.map((n) => [n.id, n]));
    expect(edges.filter((e) => byId.get(String(e.task_id))!.startedAt!.getTime() < finishedAt.get(String(e.depends_on))!)).toEqual([]);
    // Each task's run is on record once, and each middle's children exist once (they commit with its success).
    const runs = await ds.getRepository(RunLog).find();
    const runsOf = new Map<string, number>();
    for (const r of runs) runsOf.set(r.taskId, (runsOf.get(r.taskId) ?? 0) + 1);
    expect(runsOf.size).toBe(TOTAL);
    expect([...runsOf].filter(([, n]) => n !== 1)).toEqual([]);
    const children = await ds.getRepository(RecordRun).find({ where: { type: "record_run" } });
    const childrenOf = new Map<string, number>();
    for (const c of children) childrenOf.set(c.parentId!, (childrenOf.get(c.parentId!) ?? 0) + 1);
    expect(children).toHaveLength(middles.length * 2);
    expect([...childrenOf.values()].every((n) => n === 2)).toBe(true);
  }, Math.max(150_000, Number(process.env.ORMQ_CHAOS_WORKFLOW_TASKS ?? 0) * 60 + 60_000));

  if (dialect === "sqlite") {
    it("four processes enqueue into and work one SQLite file at once: nothing lost, no SQLITE_BUSY", async () => {
      const PER_PROCESS = 400;
      const env = { ORMQ_DATABASE_URL: db.url, ORMQ_CONCURRENCY: "10", ORMQ_TEST_ENQUEUE: String(PER_PROCESS), ...FAST };
      const workers = await Promise.all(Array.from({ length: 4 }, () => startWorker(env)));
      try {
        await until("every task succeeded", async () => (await ds.getRepository(RecordRun).countBy({ status: "succeeded" })) === 4 * PER_PROCESS, 60_000);
      } finally {
        const exits = await stopAll(workers);
        for (const exit of exits) {
          expect(exit.stderr).not.toMatch(/SQLITE_BUSY|database is locked/);
          expect(exit.code).toBe(0);
        }
      }
      expect(await ds.getRepository(BaseTaskEntity).count()).toBe(4 * PER_PROCESS);
      // Each task's run is on record once, even one whose lease ran out under a stalled worker: the
      // record commits with the success (ctx.transaction), which the guard lets through once.
      const runs = await ds.getRepository(RunLog).find();
      const runsOf = new Map<string, number>();
      for (const run of runs) runsOf.set(run.taskId, (runsOf.get(run.taskId) ?? 0) + 1);
      expect(runsOf.size).toBe(4 * PER_PROCESS);
      expect([...runsOf].filter(([, n]) => n !== 1)).toEqual([]);
    }, 120_000);
  }
});

describe("chaos: PostgreSQL restarts mid-drain", () => {
  it("every task succeeds", async () => {
    const pg = await restartablePostgres();
    const db: TestDb = { dialect: "postgres", url: pg.url, drop: async () => {} };
    let ds = await openDataSource(db, testEntities);
    const TASKS = 2_000;
    const workers: WorkerProcess[] = [];
    try {
      await ds.getRepository(RecordRun).save(Array.from({ length: TASKS }, (_, i) => RecordRun.create({ label: `r${i}` })), { chunk: 500 });
      await ds.destroy();
      for (let i = 0; i < 2; i++) workers.push(await startWorker({ ORMQ_DATABASE_URL: pg.url, ORMQ_CONCURRENCY: "10", ...FAST }));
      await sleep(300);
      await pg.stop(); // mid-drain
      await sleep(1_000);
      await pg.start();
      ds = await openDataSource(db, testEntities, { migrationsRun: false });
      await until("every task succeeded", async () => (await ds.getRepository(RecordRun).countBy({ status: "succeeded" })) === TASKS, 90_000);
      const exits = await stopAll(workers);
      for (const exit of exits) expect({ code: exit.code, stderr: exit.code === 0 ? "" : exit.stderr }).toEqual({ code: 0, stderr: "" });
      expect(await ds.getRepository(RecordRun).countBy({ status: "running" })).toBe(0);
    } finally {
      await stopAll(workers);
      if (ds.isInitialized) await ds.destroy();
      await pg.exit();
    }
  }, 150_000);
});

if (process.env.ORMQ_SYSTEM_TESTS !== "1") {
  console.log("tests/chaos.test.ts: the MariaDB crash test skipped: it runs a MariaDB server of its own (mariadb-server); set ORMQ_SYSTEM_TESTS=1, as .ci/run does");
}
(process.env.ORMQ_SYSTEM_TESTS === "1" ? describe : describe.skip)("chaos: MariaDB crashes mid-drain (SIGKILL) and starts again", () => {
  it("every task succeeds and every run is on record", async () => {
    const server = await startMariaDb();
    const workers: WorkerProcess[] = [];
    let ds: DataSource | undefined;
    try {
      const db = await createMariaDbTestDb(server.url);
      ds = await openDataSource(db, testEntities);
      const TASKS = 2_000;
      await ds.getRepository(RecordRun).save(Array.from({ length: TASKS }, (_, i) => RecordRun.create({ label: `r${i}` })), { chunk: 500 });
      await ds.destroy();
      for (let i = 0; i < 2; i++) workers.push(await startWorker({ ORMQ_DATABASE_URL: db.url, ORMQ_CONCURRENCY: "10", ...FAST }));
      // Mid-drain: once the workers are under way, well before the end.
      const watcher = await openDataSource(db, testEntities, { migrationsRun: false }, false);
      // Both registered before the crash: a worker cut off while it registers exits (its
      // supervisor starts it again), which is not what this test is about (seen once in CI).
      await until("both workers registered", async () => Number((await watcher.query("SELECT COUNT(*) AS n FROM ormq_workers"))[0].n) === 2, 30_000);
      let doneAtCrash = 0;
      await until("the drain is under way", async () => (doneAtCrash = await watcher.getRepository(RecordRun).countBy({ status: "succeeded" })) >= 50, 30_000);
      await watcher.destroy();
      expect(doneAtCrash).toBeLessThan(TASKS);
      await server.kill("SIGKILL"); // a crash: connections cut without a word
      await sleep(1_000);
      await server.start();
      ds = await openDataSource(db, testEntities, { migrationsRun: false });
      const open = ds;
      await until("every task succeeded", async () => (await open.getRepository(RecordRun).countBy({ status: "succeeded" })) === TASKS, 90_000);
      const exits = await stopAll(workers);
      for (const exit of exits) expect({ code: exit.code, stderr: exit.code === 0 ? "" : exit.stderr }).toEqual({ code: 0, stderr: "" });
      expect(await ds.getRepository(RecordRun).countBy({ status: "running" })).toBe(0);
      // Each task's run is logged in the same database: a crash may repeat a run whose outcome it
      // lost (at least once), never lose one.
      const runs = (await ds.query(`SELECT COUNT(DISTINCT ${"`taskId`"}) AS tasks FROM test_runs`))[0] as { tasks: unknown };
      expect(Number(runs.tasks)).toBe(TASKS);
    } finally {
      await stopAll(workers);
      if (ds?.isInitialized) await ds.destroy();
      await server.stop();
    }
  }, 150_000);
});
