import type { DataSource } from "typeorm";
import { waitForResults } from "../src";
import { RecordRun, RunLog, testEntities } from "./fixtures/tasks";
import { WITH_MARIADB, type TestDb, useTestDatabase } from "./support/db";
import { spawnWorker } from "./support/processes";

const TASKS = 2_000;
const PROCESSES = 4;

describe.each(WITH_MARIADB)("%s: four worker processes drain one queue", (dialect) => {
  let db: TestDb;
  let ds: DataSource;
  useTestDatabase(dialect, (opened) => ({ db, ds } = opened), testEntities);

  it(`runs each of ${TASKS} tasks exactly once; this process waits for results the others produce`, async () => {
    const tasks = Array.from({ length: TASKS }, (_, i) => RecordRun.create({ label: `t${i}` }));
    await ds.getRepository(RecordRun).save(tasks, { chunk: 250 });

    const workers = Array.from({ length: PROCESSES }, () => spawnWorker({ ORMQ_DATABASE_URL: db.url, ORMQ_CONCURRENCY: "10" }));
    try {
      await Promise.all(workers.map((w) => w.ready));
      // Waits made here, for tasks the worker processes run: every 40th task.
      const waited = tasks.filter((_, i) => i % 40 === 0);
      const results = waitForResults(waited.map((t) => t.id), { dataSource: ds, timeoutMs: 60_000 });
      for (const w of workers) w.child.stdin!.write("go\n");
      expect(await results).toEqual(waited.map((t) => ({ id: t.id, result: { label: t.label, cls: "RecordRun" }, deleted: false })));
      const exits = await Promise.all(workers.map((w) => w.exited));
      for (const r of exits) expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });

      const succeeded = exits.reduce((sum, r) => sum + (r.summary as { succeeded: number }).succeeded, 0);
      expect(succeeded).toBe(TASKS);
      const runs = await ds.getRepository(RunLog).find();
      expect(runs).toHaveLength(TASKS);
      expect(new Set(runs.map((r) => r.taskId)).size).toBe(TASKS);
      // They really shared the work.
      expect(new Set(runs.map((r) => r.worker)).size).toBeGreaterThan(1);
      expect(await ds.getRepository(RecordRun).countBy({ status: "succeeded" })).toBe(TASKS);
    } finally {
      for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGKILL");
    }
  }, 120_000);
});
