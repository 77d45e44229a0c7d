/**
 * `static executor = "process"`: run() in a pool of child processes, so a task that crashes, runs
 * out of memory or never ends takes down only its own process. The workers here are child
 * processes running compiled JavaScript, as a task process must load the task's compiled module;
 * the bootstrap module is tests/fixtures/data-source.ts.
 */
import { readFileSync } from "node:fs";
import type { DataSource } from "typeorm";
import { BaseTaskEntity } from "../src";
import { cancelTask } from "../src/admin";
import { allTestEntities, ProcessJob, RecordRun } from "./fixtures/tasks";
import { WITH_MARIADB, type TestDb, useTestDatabase } from "./support/db";
import { reload, until } from "./support/helpers";
import { SYSTEM_TESTS } from "./support/pgbouncer";
import { spawnBootstrapWorker } from "./support/processes";

if (!SYSTEM_TESTS) {
  console.log("tests/processes.test.ts: the SIGKILLed-worker test skipped: it kills a real worker under a task spinning at full CPU; set ORMQ_SYSTEM_TESTS=1, as .ci/run does");
}
const itSystem = SYSTEM_TESTS ? it : it.skip;

/** Whether a process of this pid exists (and is not a zombie: killed, waiting for its parent to reap it). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // "pid (comm) S ...": the state follows the command's name, which may hold spaces.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // no /proc (not Linux): kill(pid, 0) said it is there
  }
}

/** Kills what a failed test may have left running, so that it does not outlive the test. */
function killLeft(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone, as it should be
    }
  }
}

describe.each(WITH_MARIADB)("%s: process tasks", (dialect) => {
  let db: TestDb;
  let ds: DataSource;
  useTestDatabase(dialect, (opened) => ({ db, ds } = opened), allTestEntities);
  beforeEach(async () => {
    await ds.getRepository(BaseTaskEntity).createQueryBuilder().delete().execute();
  });

  const worker = (extra: Record<string, string> = {}) => spawnBootstrapWorker(db.url, extra);

  const job = (processMode: ProcessJob["processMode"]) => ProcessJob.create({ processMode });

  /** The pids a `child_wait`/`child_spin` task reports once it runs: its `sleep`'s and its process's. */
  const sleepOf = async (task: ProcessJob) => {
    const said = async () => (await reload<ProcessJob>(ds, task)).progressMessage ?? "";
    await until("the task to start its sleep", async () => /^sleep \d+ under \d+$/.test(await said()), 30_000);
    const [, sleep, , taskProcess] = (await said()).split(" ");
    return { sleep: Number(sleep), taskProcess: Number(taskProcess) };
  };

  it("a native crash, a run past its heap limit and one past its timeout each fail only their own attempt; the others succeed", async () => {
    const repo = ds.getRepository(ProcessJob);
    const crash = await repo.save(job("abort").withMaxAttempts(1));
    const hog = await repo.save(job("hog"));
    const spin = await repo.save(job("spin").withTimeout(500));
    const good = await repo.save([job("ok"), job("ok"), job("resolve")]);
    const thrower = await repo.save(job("throw"));
    const exitOnce = await repo.save(job("exit_once"));
    const busyOnce = await repo.save(job("busy_once"));
    const beside = await ds.getRepository(RecordRun).save(RecordRun.create({ label: "on the event loop" }));

    const w = worker({ ORMQ_CONCURRENCY: "4", ORMQ_TASK_PROCESSES: "4" });
    const exited = await w.exited;
    expect({ code: exited.code, signal: exited.signal }).toEqual({ code: 0, signal: null });
    expect(exited.summary).toMatchObject({ succeeded: 6, failed: 4 });

    const failedWith = async (task: { id: string }) => {
      const row = await reload(ds, task);
      return { status: row.status, error: row.errors!.at(-1) };
    };
    // process.abort() is what a segfault in native code looks like from outside: a signal.
    expect(await failedWith(crash)).toMatchObject({ status: "failed", error: { name: "TaskProcessExitError", message: expect.stringContaining("killed by SIGABRT") } });
    expect(await failedWith(hog)).toMatchObject({ status: "failed", error: { name: "TaskMemoryLimitError", message: expect.stringContaining("128 MB") } });
    // A loop that never yields cannot see its signal: its process is killed, the timeout stands.
    expect(await failedWith(spin)).toMatchObject({ status: "failed", error: { name: "TaskTimeoutError" } });
    // An error keeps its class across the process boundary (retry policies match on it).
    expect(await failedWith(thrower)).toMatchObject({ status: "failed", error: { name: "TypeError", message: "bad input, thrown in a task process" } });
    // A process that exits fails that attempt; the policy retried it, in another process.
    const retried = await reload<ProcessJob>(ds, exitOnce);
    expect(retried).toMatchObject({ status: "succeeded", attempts: 2, result: { attempt: 2 } });
    expect(retried.errors![0]).toMatchObject({ name: "TaskProcessExitError", message: expect.stringContaining("exit code 3") });
    // An error of the task's own class comes back as a RemoteTaskError with its class names and
    // its plain properties: retryOn([ServiceError]) and the policy's check of `code` matched it.
    const busy = await reload<ProcessJob>(ds, busyOnce);
    expect(busy).toMatchObject({ status: "succeeded", attempts: 2, result: { attempt: 2 } });
    expect(busy.errors![0]).toMatchObject({ name: "ServiceBusyError", message: "the service is busy" });

    const workerPid = w.child.pid;
    // The hooks ran on the worker, with the error as it came back: for the TypeError thrown in a
    // task process, error() after its one attempt, then failed().
    const hooks = exited.stderr
      .split("\n")
      .filter((l) => l.includes("process task hook"))
      .map((l) => JSON.parse(l) as { taskId: string; hook: string; errName: string; hookPid: number });
    expect(hooks.filter((h) => h.taskId === thrower.id).map((h) => [h.hook, h.errName, h.hookPid])).toEqual([
      ["error", "TypeError", workerPid],
      ["failed", "TypeError", workerPid],
    ]);
    for (const task of good) {
      const done = await reload<ProcessJob>(ds, task);
      expect(done.status).toBe("succeeded");
      expect((done.result as { pid: number }).pid).not.toBe(workerPid);
    }
    const resolved = await reload<ProcessJob>(ds, good[2]);
    expect(resolved).toMatchObject({
      result: { greeting: "hello from the bootstrap container", attempt: 1 },
      progress: 0.5,
      progressMessage: "reported from a task process",
    });
    // Its log line came back through the worker's logger, with the task's fields.
    const logged = exited.stderr.split("\n").find((l) => l.includes("logged in a task process"));
    expect(JSON.parse(logged!)).toMatchObject({ taskId: resolved.id, type: "process_job", attempt: 1, mode: "resolve" });
    const uncloneable = exited.stderr.split("\n").find((l) => l.includes("a field that cannot cross"));
    expect(JSON.parse(uncloneable!)).toMatchObject({ taskId: resolved.id, callback: "[not sendable: function]" });
    expect((await reload(ds, beside)).status).toBe("succeeded");
    expect(await ds.getRepository(BaseTaskEntity).countBy({ status: "running" })).toBe(0);
  }, 90_000);

  if (dialect === "sqlite") {
    it("a cancel ends a task that ignores its signal by ending its process; processes are replaced after taskProcessMaxTasks attempts", async () => {
      const repo = ds.getRepository(ProcessJob);
      const w = worker({ ORMQ_TEST_FOREVER: "1", ORMQ_CONCURRENCY: "1", ORMQ_TASK_PROCESSES: "1", ORMQ_TASK_PROCESS_MAX_TASKS: "2" });
      try {
        const spin = await repo.save(job("spin"));
        await until("the task to spin", async () => /^spinning in \d+$/.test((await reload<ProcessJob>(ds, spin)).progressMessage ?? ""), 30_000);
        const spinner = Number((await reload<ProcessJob>(ds, spin)).progressMessage!.split(" ").at(-1));
        expect(await cancelTask(spin.id, { dataSource: ds, reason: "enough" })).toMatchObject({ outcome: "cancelRequested" });
        await until("the cancel to end it", async () => (await reload(ds, spin)).status === "cancelled", 30_000);
        // Its process is gone: the only way to stop a loop that never yields.
        await until("its process to be gone", () => !alive(spinner), 10_000);

        // One at a time, so they run in this order in the one process slot.
        const pids: number[] = [];
        for (let i = 0; i < 5; i++) {
          const task = await repo.save(job("ok"));
          await until("the task to succeed", async () => (await reload(ds, task)).status === "succeeded", 30_000);
          pids.push(((await reload<ProcessJob>(ds, task)).result as { pid: number }).pid);
        }
        // Each process serves two attempts and is replaced: three processes for five attempts,
        // each serving a run of consecutive ones.
        expect(pids).not.toContain(spinner);
        expect(pids.filter((pid, i) => i > 0 && pid !== pids[i - 1]).length).toBe(2);
        expect([...new Set(pids)].map((pid) => pids.filter((p) => p === pid).length)).toEqual([2, 2, 1]);
      } finally {
        w.child.kill("SIGTERM");
      }
      const exited = await w.exited;
      expect(exited.code).toBe(0);
    }, 90_000);

    it("a task's whole process group is killed at its timeout, at a cancel, when its process is replaced and at the worker's stop: the `sleep` it started is gone", async () => {
      const repo = ds.getRepository(ProcessJob);
      // Info: the test waits for the worker's "stopping" line before its second SIGTERM.
      const w = worker({ ORMQ_TEST_FOREVER: "1", ORMQ_CONCURRENCY: "1", ORMQ_TASK_PROCESSES: "1", ORMQ_TASK_PROCESS_MAX_TASKS: "2", ORMQ_LOG_LEVEL: "info" });
      const left: number[] = [];
      try {
        // A process started first, so that the timeout below is not spent starting one.
        const warmUp = await repo.save(job("ok"));
        await until("the first task to succeed", async () => (await reload(ds, warmUp)).status === "succeeded", 30_000);

        // Timed out: its process is killed a second after the abort it ignores, and the sleep with it.
        const timed = await repo.save(job("child_wait").withTimeout(3_000).withMaxAttempts(1));
        const atTimeout = await sleepOf(timed);
        left.push(atTimeout.sleep);
        await until("the timeout to fail it", async () => (await reload(ds, timed)).status === "failed", 30_000);
        expect((await reload(ds, timed)).errors!.at(-1)).toMatchObject({ name: "TaskTimeoutError" });
        await until("the timed-out task's sleep to be gone", () => !alive(atTimeout.sleep), 5_000);

        // Cancelled: the same.
        const cancelled = await repo.save(job("child_wait"));
        const atCancel = await sleepOf(cancelled);
        left.push(atCancel.sleep);
        expect(await cancelTask(cancelled.id, { dataSource: ds, reason: "enough" })).toMatchObject({ outcome: "cancelRequested" });
        await until("the cancel to end it", async () => (await reload(ds, cancelled)).status === "cancelled", 30_000);
        await until("the cancelled task's sleep to be gone", () => !alive(atCancel.sleep), 5_000);

        // Left running by a task that returned: it lives with its process, which serves two
        // attempts, and goes when that process is replaced (a process that exits takes its group).
        const leaver = await repo.save(job("child_left"));
        await until("the task to succeed", async () => (await reload(ds, leaver)).status === "succeeded", 30_000);
        const { pid, sleep } = (await reload<ProcessJob>(ds, leaver)).result as { pid: number; sleep: number };
        left.push(sleep);
        expect(alive(sleep)).toBe(true);
        const next = await repo.save(job("ok"));
        await until("the next task to succeed", async () => (await reload(ds, next)).status === "succeeded", 30_000);
        expect(((await reload<ProcessJob>(ds, next)).result as { pid: number }).pid).toBe(pid);
        await until("the replaced process's sleep to be gone", () => !alive(sleep), 5_000);

        // At the worker's stop: a second SIGTERM skips the grace period; the run is aborted, then killed.
        const atStop = await sleepOf(await repo.save(job("child_wait")));
        left.push(atStop.sleep);
        w.child.kill("SIGTERM");
        await until("the worker to start stopping", () => w.stderr().includes("stopping: waiting for running tasks"), 10_000);
        w.child.kill("SIGTERM");
        expect((await w.exited).code).toBe(0);
        await until("the sleep of the task running at the stop to be gone", () => !alive(atStop.sleep), 5_000);
      } finally {
        w.child.kill("SIGKILL");
        await w.exited;
        killLeft(left);
      }
    }, 90_000);

    itSystem("a task process dies with its worker, whatever it runs: after a SIGKILL of the worker, a task spinning in a tight loop and one waiting are gone, and the sleeps they started", async () => {
      const w = worker({ ORMQ_TEST_FOREVER: "1", ORMQ_CONCURRENCY: "2", ORMQ_TASK_PROCESSES: "2" });
      const left: number[] = [];
      try {
        const repo = ds.getRepository(ProcessJob);
        // The spinning one never sees its channel close; the waiting one does (a transcode waiting
        // for its ffmpeg), and must not leave its sleep behind as it exits.
        const [spinning, waiting] = await Promise.all([sleepOf(await repo.save(job("child_spin"))), sleepOf(await repo.save(job("child_wait")))]);
        left.push(spinning.sleep, spinning.taskProcess, waiting.sleep, waiting.taskProcess);
        w.child.kill("SIGKILL");
        await w.exited;
        await until("the spinning task process to be gone", () => !alive(spinning.taskProcess), 5_000);
        await until("the spinning one's sleep to be gone", () => !alive(spinning.sleep), 5_000);
        await until("the waiting task process to be gone", () => !alive(waiting.taskProcess), 5_000);
        await until("the waiting one's sleep to be gone", () => !alive(waiting.sleep), 5_000);
      } finally {
        w.child.kill("SIGKILL");
        await w.exited;
        killLeft(left);
      }
    }, 60_000);

    it("a process killed from outside fails that attempt with the signal, and the retry runs in a new one; a process past taskProcessRecycleMb is replaced", async () => {
      const repo = ds.getRepository(ProcessJob);
      const w = worker({ ORMQ_TEST_FOREVER: "1", ORMQ_CONCURRENCY: "1", ORMQ_TASK_PROCESSES: "1", ORMQ_TASK_PROCESS_RECYCLE_MB: "250" });
      const pidOf = async (task: ProcessJob) => {
        await until("the task to succeed", async () => (await reload(ds, task)).status === "succeeded", 30_000);
        return ((await reload<ProcessJob>(ds, task)).result as { pid: number }).pid;
      };
      try {
        const waiting = await repo.save(job("wait_once"));
        await until("the task to wait", async () => /^waiting in \d+$/.test((await reload<ProcessJob>(ds, waiting)).progressMessage ?? ""), 30_000);
        const waiter = Number((await reload<ProcessJob>(ds, waiting)).progressMessage!.split(" ").at(-1));
        process.kill(waiter, "SIGKILL");
        const retriedIn = await pidOf(waiting);
        expect(retriedIn).not.toBe(waiter);
        const killed = await reload<ProcessJob>(ds, waiting);
        expect(killed).toMatchObject({ attempts: 2, result: { attempt: 2 } });
        expect(killed.errors![0]).toMatchObject({ name: "TaskProcessExitError", message: expect.stringContaining("killed by SIGKILL") });

        // A process well under the mark serves attempt after attempt; one left holding 300 MB
        // (outside the V8 heap, where memoryLimitMb cannot reach) is replaced after its attempt.
        const first = await pidOf(await repo.save(job("ok")));
        expect(await pidOf(await repo.save(job("ok")))).toBe(first);
        expect(await pidOf(await repo.save(job("leak")))).toBe(first);
        expect(await pidOf(await repo.save(job("ok")))).not.toBe(first);
        await until("the replaced process to be gone", () => !alive(first), 10_000);
      } finally {
        w.child.kill("SIGTERM");
      }
      const exited = await w.exited;
      expect(exited.code).toBe(0);
    }, 90_000);
  }
});
