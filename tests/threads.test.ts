/**
 * `static executor = "thread"`: run() in a worker thread, so CPU-bound work does not stall the
 * worker. The workers here are child processes running compiled JavaScript, as a thread must load
 * the task's compiled module; the bootstrap module is tests/fixtures/data-source.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DataSource } from "typeorm";
import { BaseTaskEntity } from "../src";
import { RecordRun, allTestEntities, ThreadJob } from "./fixtures/tasks";
import { WITH_MARIADB, type TestDb, useTestDatabase } from "./support/db";
import { reload, until } from "./support/helpers";
import { spawnBootstrapWorker } from "./support/processes";

describe.each(WITH_MARIADB)("%s: thread tasks", (dialect) => {
  let db: TestDb;
  let ds: DataSource;
  let dir: string;
  useTestDatabase(dialect, (opened) => ({ db, ds } = opened), allTestEntities);
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), "ormq-threads-"))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const worker = (extra: Record<string, string> = {}) => spawnBootstrapWorker(db.url, extra);

  it("a CPU-bound thread task delays neither heartbeats nor other tasks", async () => {
    const marker = join(dir, `${dialect}-release`);
    const spin = await ds.getRepository(ThreadJob).save(ThreadJob.create({ mode: "spin", marker }));
    const w = worker();
    try {
      // The thread task is running and spinning without ever yielding its thread.
      await until("the spin task to run", async () => (await reload(ds, spin)).status === "running", 30_000);
      const firstLease = (await reload(ds, spin)).lockedUntil!.getTime();
      // Meanwhile the worker's event loop is free: another task is claimed and run...
      const other = await ds.getRepository(RecordRun).save(RecordRun.create({ label: "beside a busy thread" }));
      await until("the other task to finish", async () => (await reload(ds, other)).status === "succeeded", 30_000);
      // ...and heartbeats still renew the spinning task's lease.
      await until("a heartbeat", async () => (await reload(ds, spin)).lockedUntil!.getTime() > firstLease, 30_000);
      expect((await reload(ds, spin)).status).toBe("running");
    } finally {
      writeFileSync(marker, "go");
    }
    const exited = await w.exited;
    expect({ code: exited.code, summary: exited.summary }).toMatchObject({ code: 0, summary: { succeeded: 2, failed: 0 } });
    const done = await reload<ThreadJob>(ds, spin);
    expect(done.status).toBe("succeeded");
    expect((done.result as { threadId: number }).threadId).toBeGreaterThan(0); // not the main thread (0)
  }, 90_000);

  it("errors, timeouts and the bootstrap container flow back from the thread", async () => {
    const thrower = await ds.getRepository(ThreadJob).save(ThreadJob.create({ mode: "throw" }));
    const hanger = await ds.getRepository(ThreadJob).save(ThreadJob.create({ mode: "spin_forever" }).withTimeout(300));
    const resolver = await ds.getRepository(ThreadJob).save(ThreadJob.create({ mode: "resolve" }));
    const after = await ds.getRepository(RecordRun).save(RecordRun.create({ label: "after the hang" }));
    const w = worker({ ORMQ_THREADS: "2", ORMQ_CONCURRENCY: "4" });
    const exited = await w.exited;
    expect(exited.code).toBe(0);
    expect(exited.stderr).not.toContain("stopped claiming");
    expect(exited.summary).toMatchObject({ succeeded: 2, failed: 2 });

    const thrown = await reload<ThreadJob>(ds, thrower);
    expect(thrown.status).toBe("failed");
    expect(thrown.errors![0]).toMatchObject({ name: "TypeError", message: "bad input, thrown in a thread" });
    // A thread that never looks at its signal is terminated; the attempt fails with the timeout.
    const hung = await reload<ThreadJob>(ds, hanger);
    expect(hung.status).toBe("failed");
    expect(hung.errors![0]).toMatchObject({ name: "TaskTimeoutError" });
    // Its log line came back through the worker's logger, with the task's fields.
    const logged = exited.stderr.split("\n").find((l) => l.includes("logged in a thread"));
    expect(JSON.parse(logged!)).toMatchObject({ taskId: resolver.id, type: "thread_job", attempt: 1, mode: "resolve" });
    expect(await reload<ThreadJob>(ds, resolver)).toMatchObject({
      result: {
        greeting: "hello from the bootstrap container",
        attempt: 1,
        refused: ["AttemptCommitError", "AttemptCommitError"],
        // The task in the thread holds its claim's state too (its row carries what the claim did not read back; lease 3 s).
        held: { lockedBy: expect.stringMatching(/./) as unknown, updatedIsStart: true, leaseMs: 3000 },
      },
      // Its progress came back too, and was written before its outcome.
      progress: 0.5,
      progressMessage: "reported from a thread",
    });
    expect((await reload(ds, after)).status).toBe("succeeded");
    expect(await ds.getRepository(BaseTaskEntity).countBy({ status: "running" })).toBe(0);
  }, 90_000);
});
