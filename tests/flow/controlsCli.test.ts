/**
 * The flow controls from the command line (`ormq queue`, `ormq type`, `ormq stats`), and a worker
 * that meets a schema newer than it knows.
 */
import type { DataSource } from "typeorm";
import { enqueueMany, processN } from "../../src";
import { MetaEntity, SCHEMA_VERSION } from "../../entities";
import { cancelTask, createSchedule } from "../../src/admin";
import { SpanTask } from "../fixtures/flow";
import { allTestEntities, SendEmail } from "../fixtures/tasks";
import { memoryLogger, useTestDatabase, type TestDb } from "../support/db";
import { DATA_SOURCE_MODULE, runCli, startCli } from "../support/processes";
import { until } from "../support/helpers";

const D = ["-d", DATA_SOURCE_MODULE];

describe("flow controls through the ormq command (sqlite)", () => {
  let ds: DataSource;
  let db: TestDb;
  useTestDatabase("sqlite", (o) => ((ds = o.ds), (db = o.db)), allTestEntities);
  const env = () => ({ ORMQ_DATABASE_URL: db.url });

  it("pauses, limits, lists, shows in stats, resumes; bad input is one line", async () => {
    expect((await runCli(["queue", "pause", "spans", ...D], env())).code).toBe(0);
    expect((await runCli(["type", "pause", "send_email", ...D], env())).code).toBe(0);
    const set = await runCli(["queue", "set", "emails", "--concurrency", "5", "--rate", "20/1s", ...D, "--json"], env());
    expect(set.code).toBe(0);
    expect(JSON.parse(set.stdout).controls).toEqual([
      expect.objectContaining({ scope: "queue", name: "emails", paused: false, concurrency: 5, rate: { max: 20, perMs: 1000 } }),
      expect.objectContaining({ scope: "queue", name: "spans", paused: true, concurrency: null }),
      expect.objectContaining({ scope: "type", name: "send_email", paused: true }),
    ]);
    const stats = await runCli(["stats", ...D], env());
    expect(stats.stdout).toMatch(/paused\s+queue spans, type send_email/);
    expect(stats.stdout).toMatch(/concurrency limits\s+queue emails \(5\)/);
    expect(stats.stdout).toMatch(/rate limits\s+queue emails \(20 per 1000 ms\)/);
    // And what the classes declare.
    expect(stats.stdout).toMatch(/class limited_account\s+at most 2 running per accountId/);
    expect(stats.stdout).toMatch(/class rated_task\s+at most 20 per 1000 ms\n/);
    expect(stats.stdout).toMatch(/class hourly_account\s+unique by accountId \(skip, within 3600000 ms\)/);
    // A paused queue is not claimed.
    await SpanTask.create({}).save();
    expect((await processN(SpanTask, 1, { dataSource: ds, pollIntervalMs: 50, logger: memoryLogger().logger })).processed).toBe(0);
    expect((await runCli(["queue", "resume", "spans", ...D], env())).code).toBe(0);
    expect((await runCli(["type", "resume", "send_email", ...D], env())).code).toBe(0);
    expect((await runCli(["queue", "set", "emails", "--concurrency", "none", "--rate", "none", ...D], env())).code).toBe(0);
    expect((await runCli(["queue", "list", ...D], env())).stdout).toMatch(/no queue or type is paused or limited/);
    for (const [args, message] of [
      [["queue", "set", "emails", "--concurrency", "0"], /--concurrency must be an integer from 1 to 1000000/],
      [["queue", "set", "emails"], /needs --concurrency N or --rate/],
      [["queue", "set", "emails", "--rate", "20 per second"], /--rate must be MAX\/WINDOW/],
      [["queue", "set", "emails", "--rate", "0/1s"], /--rate's MAX must be an integer from 1/],
      [["queue", "stop", "emails"], /unknown action "stop"/],
      [["queue", "pause"], /needs a queue name/],
    ] as const) {
      const result = await runCli([...args, ...D], env());
      expect({ args, code: result.code }).toEqual({ args, code: 1 });
      expect(result.stderr).toMatch(message);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
    }
  });

  it("lists the schedules with their next run, pauses and resumes one; bad input is one line", async () => {
    await createSchedule({ dataSource: ds, name: "digest", type: "send_email", cron: "0 8 * * 1-5", timezone: "Europe/Paris", data: { to: "team@example.com" } });
    const listed = await runCli(["schedules", ...D], env());
    expect(listed.code).toBe(0);
    const row = listed.stdout.split("\n").find((l) => l.includes("digest"))!;
    expect(row.split("│").map((c) => c.trim()).filter(Boolean)).toEqual(["digest", "send_email", "0 8 * * 1-5", "Europe/Paris", "api", "active", expect.stringMatching(/^\d{4}-\d\d-\d\dT/)]);
    const paused = await runCli(["schedules", "pause", "digest", ...D, "--json"], env());
    expect(paused.code).toBe(0);
    expect(JSON.parse(paused.stdout).schedules).toEqual([expect.objectContaining({ name: "digest", paused: true, source: "api" })]);
    expect((await runCli(["schedules", "resume", "digest", ...D], env())).stdout).toMatch(/resumed\s+digest/);
    for (const [args, message] of [
      [["schedules", "pause", "nope"], /no schedule named "nope"/],
      [["schedules", "stop", "digest"], /unknown action "stop"/],
      [["schedules", "pause"], /needs a schedule name/],
    ] as const) {
      const result = await runCli([...args, ...D], env());
      expect({ args, code: result.code }).toEqual({ args, code: 1 });
      expect(result.stderr).toMatch(message);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
    }
    expect((await runCli(["schedules", "delete", "digest", ...D], env())).stdout).toMatch(/no schedules/);
  });

  it("deletes and retries by filter, on a task class's own column; bad filters are one line", async () => {
    const [a, b, c] = await enqueueMany([SendEmail.create({ to: "a@example.com" }), SendEmail.create({ to: "b@example.com" }), SendEmail.create({ to: "a@example.com" })], { dataSource: ds });
    for (const id of [a, b]) await cancelTask(id, { dataSource: ds });
    const deleted = await runCli(["delete", "--status", "cancelled", "--type", "send_email", "--where", "to=a@example.com", ...D, "--json"], env());
    expect({ code: deleted.code, out: JSON.parse(deleted.stdout) }).toEqual({ code: 0, out: { deleted: 1, blocked: [] } });
    expect((await ds.getRepository(SendEmail).findBy({ to: "a@example.com" })).map((t) => t.id)).toEqual([c]);
    const retried = await runCli(["retry", "--failed", "--type", "send_email", "--where", "to=b@example.com", ...D, "--json"], env());
    expect(JSON.parse(retried.stdout)).toEqual({ requeued: 0, duplicates: 0 }); // b is cancelled, not failed
    for (const [args, message] of [
      [["delete"], /needs a filter/],
      [["delete", "--where", "to=x"], /--where needs --type/],
      [["delete", "--type", "send_email", "--where", "nope=x"], /"nope" is not a column of SendEmail/],
      [["delete", "--status", "pending"], /not finished: cancel it first/],
      [["retry", "--failed", "--type", "send_email", "--where", "to~x"], /--where takes PROPERTY=VALUE/],
      [["delete", "--status", "failed", "--created-before", "yesterday"], /--created-before takes an ISO date/],
    ] as const) {
      const result = await runCli([...args, ...D], env());
      expect({ args, code: result.code }).toEqual({ args, code: 1 });
      expect(result.stderr).toMatch(message);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
    }
    await ds.getRepository(SendEmail).createQueryBuilder().delete().where("type = 'send_email'").execute();
  });

  it("ormq dashboard: refuses to start without an authentication choice; serves with a token until SIGTERM", async () => {
    for (const [args, message] of [
      [["dashboard"], /needs an authentication choice/],
      [["dashboard", "--no-auth", "--host", "0.0.0.0"], /--no-auth is allowed only on a loopback address/],
      [["dashboard", "--token", "short"], /at least 16 characters/],
      [["dashboard", "--port", "70000", "--no-auth"], /--port/],
    ] as const) {
      const result = await runCli([...args, ...D], env());
      expect({ args, code: result.code }).toEqual({ args, code: 1 });
      expect(result.stderr).toMatch(message);
    }
    const token = "cli-token-0123456789abcdef";
    const cli = startCli(["dashboard", "--port", "0", ...D], { ...env(), ORMQ_DASHBOARD_TOKEN: token });
    await until("the dashboard listens", () => cli.stdoutLines().some((l) => l.startsWith("ormq dashboard on http://127.0.0.1:")));
    const url = /http:\/\/[^ ]+/.exec(cli.stdoutLines().find((l) => l.startsWith("ormq dashboard on"))!)![0];
    expect((await fetch(`${url}tasks`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await fetch(`${url}tasks`, { redirect: "manual" })).status).toBe(303);
    cli.child.kill("SIGTERM");
    expect((await cli.exited).code).toBe(0);

    // --no-auth on loopback, read-only: pages open to this machine, every action refused.
    const open = startCli(["dashboard", "--port", "0", "--no-auth", "--read-only", ...D], env());
    await until("the dashboard listens", () => open.stdoutLines().some((l) => l.startsWith("ormq dashboard on http://127.0.0.1:")));
    const openUrl = /http:\/\/[^ ]+/.exec(open.stdoutLines().find((l) => l.startsWith("ormq dashboard on"))!)![0];
    expect((await fetch(`${openUrl}tasks`)).status).toBe(200);
    const pause = await fetch(`${openUrl}queues/spans/pause`, { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: "_csrf=x" });
    expect(pause.status).toBe(403);
    open.child.kill("SIGTERM");
    expect((await open.exited).code).toBe(0);
  });

  it("a worker refuses a schema newer than it knows", async () => {
    await ds.getRepository(MetaEntity).save({ key: "schema_version", value: "99" });
    try {
      await expect(processN(SpanTask, 1, { dataSource: ds, logger: memoryLogger().logger })).rejects.toThrow(/version 99, newer than this ormq/);
    } finally {
      await ds.getRepository(MetaEntity).save({ key: "schema_version", value: String(SCHEMA_VERSION) });
    }
  });

  it("a worker refuses a schema older than it writes, naming the migrations", async () => {
    await ds.getRepository(MetaEntity).save({ key: "schema_version", value: String(SCHEMA_VERSION - 1) });
    try {
      await expect(processN(SpanTask, 1, { dataSource: ds, logger: memoryLogger().logger })).rejects.toThrow(/older than this ormq .*run ormq's migrations/);
    } finally {
      await ds.getRepository(MetaEntity).save({ key: "schema_version", value: String(SCHEMA_VERSION) });
    }
  });
});
