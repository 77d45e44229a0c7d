/**
 * The `ormq` binary, run for real against both databases: every command, its JSON and table
 * output, and the one-line errors for bad input.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import type { DataSource } from "typeorm";
import { BaseTaskEntity } from "../src";
import { AlwaysFails, RecordRun, RunLog, allTestEntities, ValidatedEmail } from "./fixtures/tasks";
import { WITH_MARIADB, type TestDb, useTestDatabase, createTestDb } from "./support/db";
import { until } from "./support/helpers";
import { DATA_SOURCE_MODULE, runCli, startCli } from "./support/processes";

const D = ["-d", DATA_SOURCE_MODULE];

describe("ormq, without a database", () => {
  it("loads what a command needs only: its parser without TypeORM, ormq without class-validator when no class uses it", async () => {
    // What each module pulls in, read from a fresh Node process's module cache.
    const loaded = (script: string) =>
      new Promise<string[]>((resolve, reject) => {
        execFile(process.execPath, ["-e", `${script}; console.log(JSON.stringify(Object.keys(require.cache)))`], (err, stdout) => (err ? reject(err) : resolve(JSON.parse(stdout))));
      });
    const dist = join(__dirname, "..", "dist", "src");
    const program = await loaded(`require(${JSON.stringify(join(dist, "cli", "program.js"))}).buildProgram(() => {})`);
    expect(program.filter((f) => /node_modules[\\/](typeorm|pg|better-sqlite3|class-validator)[\\/]/.test(f))).toEqual([]);
    const library = await loaded(`require("reflect-metadata"); require(${JSON.stringify(join(dist, "index.js"))})`);
    expect(library.some((f) => /node_modules[\\/]typeorm[\\/]/.test(f))).toBe(true);
    expect(library.filter((f) => /node_modules[\\/]class-validator[\\/]/.test(f))).toEqual([]);
  });

  it("prints help with examples, for the program and each command", async () => {
    const main = await runCli(["--help"]);
    expect(main.code).toBe(0);
    for (const command of ["process", "submit", "stats", "list", "show", "retry", "cancel", "prune", "migrate"]) {
      expect(main.stdout).toContain(command);
      const help = await runCli([command, "--help"]);
      expect({ command, code: help.code }).toEqual({ command, code: 0 });
      expect(help.stdout).toContain("Examples:");
    }
    expect((await runCli(["process", "--help"])).stdout).toContain("[env ORMQ_CONCURRENCY]");
  });

  it.each([
    [["list"], /^ormq: no database: pass -d/],
    [["frobnicate"], /unknown command 'frobnicate'/],
    [["process", "--database-url", "./x.sqlite"], /^ormq: ormq process needs your DataSource module/],
    [["list", "--status", "done", "--database-url", "./x.sqlite"], /^ormq: --status must be one of waiting, pending, running/],
    [["list", "--limit", "-3", "--database-url", "./x.sqlite"], /^ormq: --limit must be an integer from 1 to 10000, got "-3"/],
    [["stats", "--database-url", "/nonexistent/dir/q.sqlite"], /^ormq: no SQLite database at \/nonexistent\/dir\/q.sqlite/],
    [["prune", "--database-url", "./x.sqlite"], /^ormq: --older-than is required/],
    [["prune", "--older-than", "soon", "--database-url", "./x.sqlite"], /^ormq: --older-than must be milliseconds or a duration/],
    [["stats", "-d", "./no/such/module.js"], /^ormq: data source module not found/],
  ])("ormq %j fails with one line naming the problem", async (args, message) => {
    const result = await runCli(args, { ORMQ_DATABASE_URL: "" });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(message);
    expect(result.stderr.trim().split("\n").length).toBeLessThanOrEqual(2); // the line, and commander's help hint
  });

  it("migrate creates the tables in a new SQLite file, then finds nothing to do", async () => {
    const db = await createTestDb("sqlite");
    try {
      const first = await runCli(["migrate", "--database-url", db.url, "--json"]);
      expect(first.code).toBe(0);
      expect(JSON.parse(first.stdout)).toEqual({ applied: ["OrmqInit1763900000000", "OrmqUniqueTasks1764500000000", "OrmqFlowControl1764600000000", "OrmqSchedules1764700000000", "OrmqAttemptStarts1764800000000", "OrmqWorkflows1764900000000", "OrmqIntegrations1765100000000"] });
      const again = await runCli(["migrate", "--database-url", db.url]);
      expect(again.stdout.trim()).toBe("up to date");
    } finally {
      await db.drop();
    }
  });
});

describe("ormq -d with a TypeScript module", () => {
  it("loads it through ts-node, with the decorator metadata TypeORM needs", async () => {
    const db = await createTestDb("sqlite");
    const module = ["-d", join(__dirname, "ts-app", "data-source.ts")];
    try {
      const env = { ORMQ_DATABASE_URL: db.url };
      const submitted = await runCli(["submit", "ts_greeting", ...module, "--data", '{"name":"typescript"}', "--json"], env);
      expect(submitted.stderr).toBe("");
      const run = await runCli(["process", ...module, "--until-empty", "--json"], env);
      expect(JSON.parse(run.stdout)).toMatchObject({ processed: 1, succeeded: 1 });
      const shown = JSON.parse((await runCli(["show", JSON.parse(submitted.stdout).id, "--json"], env)).stdout);
      expect(shown.fields.result).toEqual({ hello: "typescript" });
    } finally {
      await db.drop();
    }
  });
});

describe.each(WITH_MARIADB)("%s: the ormq binary", (dialect) => {
  let db: TestDb;
  let ds: DataSource;
  useTestDatabase(dialect, (opened) => ({ db, ds } = opened), allTestEntities);
  const env = () => ({ ORMQ_DATABASE_URL: db.url });

  /** A test whose subject does not depend on the database: defined once, on SQLite. */
  const itOnce = (name: string, fn: () => Promise<void>) => {
    if (dialect === "sqlite") it(name, fn);
  };

  beforeEach(async () => {
    await ds.getRepository(RunLog).clear();
    await ds.getRepository(BaseTaskEntity).createQueryBuilder().delete().execute();
  });

  it("submits tasks validated like any insert", async () => {
    const ok = await runCli(["submit", "record_run", ...D, "--data", '{"label":"from the cli"}', "--queue", "cli", "--priority", "7", "--json"], env());
    expect(ok.stderr).toBe("");
    const submitted = JSON.parse(ok.stdout);
    expect(submitted).toMatchObject({ type: "record_run", queue: "cli", priority: 7 });
    const task = await ds.getRepository(RecordRun).findOneByOrFail({ id: submitted.id });
    expect(task).toBeInstanceOf(RecordRun);
    expect(task.label).toBe("from the cli");
    expect(await ds.getRepository(BaseTaskEntity).count()).toBe(1);
  });

  // Refused before anything is written, the same way on every database (the column-type checks
  // that differ by database are in cli-hostile.test.ts, on each).
  itOnce("rejects bad submits without writing anything", async () => {
    const bad: [string[], RegExp][] = [
      [["submit", "record_run", "--data", "{oops"], /^ormq: --data is not valid JSON/],
      [["submit", "record_run", "--data", "[1]"], /^ormq: --data must be a JSON object/],
      [["submit", "record_run", "--data", '{"lable":"x"}'], /^ormq: record_run has no field "lable"; its fields: label/],
      [["submit", "no_such_type"], /^ormq: unknown task type "no_such_type"; known: .*record_run/],
      [["submit", "validated_email", "--data", '{"address":"not-an-email","subject":"hi"}'], /^ormq: .*address/],
      [["submit", "record_run", "--delay", "later"], /^ormq: --delay must be milliseconds or a duration/],
      [["submit", "record_run", "--queue", ""], /^ormq: .*queue/],
    ];
    for (const [args, message] of bad) {
      const result = await runCli([...args, ...D], env());
      expect({ args, code: result.code }).toEqual({ args, code: 1 });
      expect(result.stderr).toMatch(message);
    }
    expect(await ds.getRepository(BaseTaskEntity).count()).toBe(0);
    expect(await ds.getRepository(ValidatedEmail).count()).toBe(0);
  });

  it("processes until empty, then lists, shows, counts, retries, cancels and prunes", async () => {
    await ds.getRepository(RecordRun).save(Array.from({ length: 20 }, (_, i) => RecordRun.create({ label: `r${i}` })));
    const doomed = await ds.getRepository(AlwaysFails).save(AlwaysFails.create({}).withMaxAttempts(1));
    const waiting = await ds.getRepository(RecordRun).save(RecordRun.create({ label: "later" }).delay(3_600_000));

    const run = await runCli(["process", ...D, "--until-empty", "--concurrency", "4", "--json"], env());
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ processed: 21, succeeded: 20, failed: 1 });
    // Logs are JSON lines on stderr when it is not a terminal, with the worker's fields.
    const started = run.stderr.split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((l) => l.msg === "worker started");
    expect(started).toMatchObject({ name: "ormq", concurrency: 4 });
    expect(started.workerId).toEqual(expect.any(String));

    const listed = JSON.parse((await runCli(["list", "--status", "failed", "--json"], env())).stdout);
    expect(listed.map((t: { id: string }) => t.id)).toEqual([doomed.id]);
    const table = await runCli(["list", "--type", "record_run", "--limit", "5"], env());
    expect(table.stdout).toMatch(/│ id\s+│ type\s+│ queue/);
    expect(table.stdout.match(/record_run/g)).toHaveLength(5);

    // Read-only commands need no task classes: a database URL is enough.
    const shown = JSON.parse((await runCli(["show", doomed.id, "--json"], env())).stdout);
    expect(shown.fields).toMatchObject({ id: doomed.id, type: "always_fails", status: "failed", attempts: 1 });
    expect(shown.events.map((e: { kind: string }) => e.kind)).toEqual(["enqueued", "started", "failed"]); // the first from the row
    // A task's progress (as ctx.progress stores it) in show and in list's progress column.
    await ds.getRepository(RecordRun).update({ id: waiting.id }, { progress: 0.4, progressMessage: "4 of 10 files" });
    expect(JSON.parse((await runCli(["show", waiting.id, "--json"], env())).stdout).fields).toMatchObject({ progress: 0.4, progressMessage: "4 of 10 files" });
    expect((await runCli(["list", "--status", "pending"], env())).stdout).toMatch(/40% 4 of 10 files/);
    const stats = JSON.parse((await runCli(["stats", "--json"], env())).stdout);
    expect(stats.counts).toEqual(
      expect.arrayContaining([
        { queue: "records", type: "record_run", status: "succeeded", count: 20 },
        { queue: "records", type: "record_run", status: "pending", count: 1 },
      ]),
    );
    expect((await runCli(["stats"], env())).stdout).toContain("finished last minute");

    expect(JSON.parse((await runCli(["retry", "--failed", "--type", "always_fails", "--json"], env())).stdout)).toEqual({ requeued: 1, duplicates: 0 });
    const notFailed = await runCli(["retry", waiting.id], env());
    expect(notFailed.code).toBe(1);
    expect(notFailed.stderr).toMatch(/is pending, not failed/);
    expect(JSON.parse((await runCli(["cancel", waiting.id, "--reason", "not needed", "--json"], env())).stdout)).toEqual({ outcome: "cancelled", id: waiting.id });
    expect((await runCli(["cancel", "999999"], env())).stderr).toMatch(/^ormq: no task with id 999999/m);
    expect((await runCli(["show", "999999"], env())).code).toBe(1);

    const pruned = JSON.parse((await runCli(["prune", "--older-than", "0", "--json"], env())).stdout);
    expect(pruned.deleted).toBe(21); // 20 succeeded and one cancelled; the failed one was requeued
    expect(await ds.getRepository(BaseTaskEntity).count()).toBe(1);
  });

  itOnce("stats --watch refreshes until interrupted", async () => {
    await ds.getRepository(RecordRun).save(RecordRun.create({ label: "w" }));
    const watcher = startCli(["stats", "--watch", "0.1", "--json"], env());
    await until("two refreshes", () => watcher.stdoutLines().length >= 2, 20_000);
    watcher.child.kill("SIGINT");
    expect((await watcher.exited).code).toBe(0);
    for (const line of watcher.stdoutLines()) {
      expect(JSON.parse(line).counts).toEqual([{ queue: "records", type: "record_run", status: "pending", count: 1 }]);
    }
  });

  itOnce("takes settings from flags over the environment, and reports a bad environment value by name", async () => {
    await ds.getRepository(RecordRun).save(RecordRun.create({ label: "x" }));
    const bad = await runCli(["process", ...D, "--until-empty"], { ...env(), ORMQ_CONCURRENCY: "lots" });
    expect(bad.code).toBe(1);
    // One line, like every command's bad input (not a log record with a stack).
    expect(bad.stderr).toBe('ormq: ORMQ_CONCURRENCY must be an integer of 1 or more, got "lots"\n');
    const flagWins = await runCli(["process", ...D, "--until-empty", "--concurrency", "3", "--json"], { ...env(), ORMQ_CONCURRENCY: "lots" });
    expect(flagWins.code).toBe(0);
    expect(flagWins.stderr).toContain('"concurrency":3');
    const badFlag = await runCli(["process", ...D, "--lease-ms", "forever"], env());
    expect(badFlag.code).toBe(1);
    expect(badFlag.stderr).toMatch(/--lease-ms must be milliseconds or a duration such as 30s/);
  });

  itOnce("show lists a task's workflow, and cancel --workflow cancels everything below it", async () => {
    const root = await RecordRun.create({ label: "root" }).save();
    const child = await RecordRun.create({ label: "child", parentId: root.id }).save();
    const dependent = await RecordRun.create({ label: "dependent", dependsOn: [root, child] }).save();
    const shown = await runCli(["show", root.id], env());
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/\nworkflow:\nparent\s+\nbelow\s+2 task\(s\): 1 pending, 1 waiting\n/);
    const row = (...cells: string[]) => new RegExp(cells.map((c) => `\\b${c}\\b`).join("[^\\n]*"));
    const after = (heading: string) => shown.stdout.slice(shown.stdout.indexOf(heading));
    expect(after("children (1):")).toMatch(row(child.id, "record_run", "pending"));
    expect(after("dependents (1):")).toMatch(row(dependent.id, "record_run", "waiting", "open"));
    const details = JSON.parse((await runCli(["show", dependent.id, "--json"], env())).stdout);
    expect(details.workflow.dependencies).toEqual({
      total: 2,
      tasks: [
        { id: root.id, type: "record_run", status: "pending", edge: "open" },
        { id: child.id, type: "record_run", status: "pending", edge: "open" },
      ],
    });
    const cancelled = await runCli(["cancel", root.id, "--workflow", "--json"], env());
    expect(JSON.parse(cancelled.stdout)).toEqual({ id: root.id, found: true, tasks: 3, cancelled: 3, cancelRequested: 0 });
  });

  it("runs only the types named, from the queues named", async () => {
    await ds.getRepository(RecordRun).save([RecordRun.create({ label: "a" }), RecordRun.create({ label: "b" }).onQueue("other")]);
    await ds.getRepository(AlwaysFails).save(AlwaysFails.create({}));
    const run = await runCli(["process", "record_run", ...D, "--queues", "records", "--until-empty", "--json"], env());
    expect(JSON.parse(run.stdout)).toMatchObject({ processed: 1, succeeded: 1 });
    expect(await ds.getRepository(BaseTaskEntity).countBy({ status: "pending" })).toBe(2);
    const unknown = await runCli(["process", "record_rnu", ...D, "--until-empty"], env());
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown task type record_rnu/);
  });

  it("--processes forks supervised workers that share the queue", async () => {
    await ds.getRepository(RecordRun).save(Array.from({ length: 200 }, (_, i) => RecordRun.create({ label: `p${i}` })), { chunk: 100 });
    const run = await runCli(["process", ...D, "--processes", "2", "--until-empty"], env());
    expect(run.code).toBe(0);
    const runs = await ds.getRepository(RunLog).find();
    expect(runs).toHaveLength(200);
    expect(new Set(runs.map((r) => r.taskId)).size).toBe(200);
    // Two worker processes ran, and each stopped when the queue was empty.
    const stops = run.stderr.split("\n").filter((l) => l.includes('"worker stopped"'));
    expect(stops).toHaveLength(2);
  });

  itOnce("--processes restarts a worker process that dies, and stops them all on SIGTERM", async () => {
    const supervisor = startCli(["process", ...D, "--processes", "2"], env());
    const started = () => supervisor.logs.filter((l) => l.msg === "worker started");
    try {
      await until("two worker processes", () => started().length === 2, 30_000);
      const victim = started()[0].pid as number;
      process.kill(victim, "SIGKILL");
      await until("a replacement", () => started().length === 3, 30_000);
      expect(supervisor.logs.find((l) => l.msg === "a worker process exited; restarting it")).toMatchObject({ pid: victim, signal: "SIGKILL" });
      expect(new Set(started().map((l) => l.pid)).size).toBe(3);
    } finally {
      supervisor.child.kill("SIGTERM");
    }
    expect((await supervisor.exited).code).toBe(0);
    expect(supervisor.logs.filter((l) => l.msg === "worker stopped")).toHaveLength(2);
  });

  it("serves Prometheus metrics while it runs, and stops gently on SIGTERM", async () => {
    const worker = startCli(["process", ...D, "--metrics-port", "0", "--poll-interval-ms", "100"], env());
    try {
      await until("the metrics server", () => worker.logs.some((l) => l.msg === "serving metrics at /metrics"), 20_000);
      const port = worker.logs.find((l) => l.msg === "serving metrics at /metrics")!.port as number;
      await ds.getRepository(RecordRun).save(Array.from({ length: 5 }, () => RecordRun.create({ label: "m" })));
      await ds.getRepository(RecordRun).save(RecordRun.create({ label: "not yet" }).delay(3_600_000));
      await until("5 tasks done", async () => (await ds.getRepository(RecordRun).countBy({ status: "succeeded" })) === 5, 20_000);
      // The counter is written just after the outcome; read until it shows all five.
      let body = "";
      await until("the counter", async () => {
        body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        return body.includes('ormq_tasks_finished_total{type="record_run",outcome="succeeded"} 5');
      });
      expect(body).toMatch(/ormq_task_run_seconds_count\{type="record_run"\} 5/);
      // This worker, and any that an earlier test killed within the last minute.
      expect(body).toMatch(/ormq_workers_live [1-9]/);
      expect(body).toMatch(/ormq_tasks_ready\{queue="records"\} 0|# TYPE ormq_tasks_ready gauge/);
      expect(body).toContain("process_cpu_seconds_total");
      expect((await fetch(`http://127.0.0.1:${port}/nope`)).status).toBe(404);
    } finally {
      worker.child.kill("SIGTERM");
    }
    const { code } = await worker.exited;
    expect(code).toBe(0);
    expect(worker.logs.some((l) => l.msg === "worker stopped")).toBe(true);
  });
});
