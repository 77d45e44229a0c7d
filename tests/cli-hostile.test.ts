/**
 * The `ormq` binary under hostile input (issue 12, "never stuck"), on both databases: every bad
 * argument is refused before the database is touched, with one line on stderr naming the problem
 * and exit code 1; `list`, `show` and `stats` print any row, however corrupt, and never write a
 * control character to the terminal.
 */
import type { DataSource } from "typeorm";
import { BaseTaskEntity, InvalidOptionError } from "../src";
import { cancelTask, retryTask, showTask, TaskEventEntity } from "../src/admin";
import { allTestEntities, RecordRun, SendEmail } from "./fixtures/tasks";
import { WITH_MARIADB, type TestDb, useTestDatabase } from "./support/db";
import { DATA_SOURCE_MODULE, runCli, type CliResult } from "./support/processes";

const D = ["-d", DATA_SOURCE_MODULE];

/** What a task's error could hold: retitle the window (OSC, BEL), clear the screen (CSI), a C1 CSI, DEL. */
const HOSTILE = "boom \x1b]0;pwned\x07\x1b[2J \u009b31m \x7f end";

/** The command failed as the CLI promises: exit 1, one line `ormq: …` naming the problem, no stack. */
function expectOneLine(result: CliResult, problem: RegExp): void {
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 1, stderr: expect.stringMatching(/^ormq: [^\n]*\n$/) });
  expect(result.stderr).toMatch(problem);
}

/** No raw control character that a terminal would act on. */
function expectNoControl(text: string): void {
  expect(text).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/);
}

describe("ormq, on any failure", () => {
  it("prints a driver's error as one line, and its stack only with ORMQ_DEBUG=1", async () => {
    const url = new URL(process.env.ORMQ_TEST_PG_URL!);
    url.pathname = "/ormq_no_such_database";
    const plain = await runCli(["stats", "--database-url", url.toString()], { ORMQ_DEBUG: "" });
    expectOneLine(plain, /^ormq: \w*[Ee]rror: database "ormq_no_such_database" does not exist\n$/);
    const debug = await runCli(["stats", "--database-url", url.toString()], { ORMQ_DEBUG: "1" });
    expect(debug.code).toBe(1);
    expect(debug.stderr.split("\n")[0]).toBe(plain.stderr.trim());
    expect(debug.stderr).toMatch(/\n\s+at /);
  });
});

describe.each(WITH_MARIADB)("%s: ormq under hostile input", (dialect) => {
  let db: TestDb;
  let ds: DataSource;
  useTestDatabase(dialect, (opened) => ({ db, ds } = opened), allTestEntities);
  const env = () => ({ ORMQ_DATABASE_URL: db.url, ORMQ_DEBUG: "" });

  /** Every row of ormq's tables: what "nothing touched" compares. */
  const snapshot = async () => ({
    tasks: await ds.query(`SELECT * FROM ormq_tasks ORDER BY id`),
    events: await ds.query(`SELECT * FROM ormq_task_events ORDER BY id`),
  });

  let pending: RecordRun;
  let failed: RecordRun;
  beforeAll(async () => {
    await ds.getRepository(BaseTaskEntity).createQueryBuilder().delete().execute();
    await ds.getRepository(TaskEventEntity).clear();
    pending = await ds.getRepository(RecordRun).save(RecordRun.create({ label: "pending" }));
    // Failed and finished long ago: a retry or a prune that ran would change it.
    failed = await ds.getRepository(RecordRun).save(RecordRun.create({ label: "failed" }));
    await ds.query(`UPDATE ormq_tasks SET status = 'failed', finished_at = 0 WHERE id = ${failed.id}`);
  });

  const attacks: [string[], RegExp][] = [
    [["cancel", "abc"], /task id must be a positive 64-bit integer .*got "abc"/],
    [["retry", "abc"], /task id must be a positive 64-bit integer .*got "abc"/],
    [["show", "99999999999999999999"], /task id must be a positive 64-bit integer .*got "99999999999999999999"/],
    [["cancel", "9223372036854775808"], /task id must be a positive 64-bit integer/],
    [["retry", "0"], /task id must be a positive 64-bit integer .*got "0"/],
    [["show", "1e3"], /task id must be a positive 64-bit integer .*got "1e3"/],
    [["cancel", "-1", "--reason", "x"], /task id must be a positive 64-bit integer .*got "-1"/],
    [["prune", "--older-than", "1000000y"], /--older-than must be at most 3153600000000 ms .*got "1000000y"/],
    [["prune", "--older-than", "1".repeat(400)], /--older-than must be at most 3153600000000 ms/],
    [["prune", "--older-than", "101y"], /--older-than must be at most 3153600000000 ms/],
    [["list", "--limit", "99999999999999999999"], /--limit must be an integer from 1 to 10000/],
    [["list", "--limit", "10001"], /--limit must be an integer from 1 to 10000, got "10001"/],
    [["list", "--before", "abc"], /--before must be a positive 64-bit integer .*got "abc"/],
    [["list", "--before", "0"], /--before must be a positive 64-bit integer .*got "0"/],
    [["process", "record_run", ...D, "--pooler", "session"], /option `pooler` must be "none" or "transaction", got "session"/],
    [["process", "record_run", ...D, "--listen-url", "mysql://user:secret@host/db"], /option `listenUrl` must be a postgres:\/\/ connection URL$/m],
    [["stats", "--watch", "1e9"], /--watch takes seconds between refreshes, more than 0 and at most 86400, got "1e9"/],
    [["stats", "--watch", "100000"], /--watch takes seconds between refreshes, more than 0 and at most 86400/],
    [["submit", "record_run", ...D, "--delay", "1000000y"], /--delay must be at most 3153600000000 ms .*got "1000000y"/],
    [["submit", "record_run", ...D, "--delay", ""], /--delay must be milliseconds or a duration/],
    [["submit", "record_run", ...D, "--priority", "99999999999"], /--priority must be an integer from -2147483647 to 2147483647/],
    [["submit", "record_run", ...D, "--max-attempts", "4294967296"], /--max-attempts must be an integer from 1 to 2147483647/],
    [["submit", "send_email", ...D, "--data", '{"to":{"x":1}}'], /--data field "to" of send_email \(column type varchar\): it takes a string, got an object/],
    [["submit", "send_email", ...D, "--data", '{"to":["a"]}'], /--data field "to" .*varchar.*got an array/],
    [["submit", "send_email", ...D, "--data", '{"to":"a\\u0000b"}'], /--data field "to" .*NUL/],
    [["submit", "send_email", ...D, "--data", '{"to":"\\ud800"}'], /--data field "to" .*lone UTF-16 surrogate/],
    [["submit", "send_email", ...D, "--data", JSON.stringify({ to: "x".repeat(256) })], /--data field "to" .*at most 255 characters, this has 256/],
    [["submit", "sleepy", ...D, "--data", '{"ms":"soon"}'], /--data field "ms" of sleepy \(column type integer\): it takes an integer .*got a string \("soon"\)/],
    [["submit", "sleepy", ...D, "--data", '{"ms":3000000000}'], /--data field "ms" .*from -2147483648 to 2147483647, got a number \(3000000000\)/],
    [["submit", "sleepy", ...D, "--data", '{"ignoreSignal":"yes"}'], /--data field "ignoreSignal" of sleepy \(column type boolean\): it takes true or false, got a string/],
  ];
  /** A short title: the module path left out, long arguments cut. */
  const title = (args: string[]) => args.filter((a) => a !== DATA_SOURCE_MODULE && a !== "-d").map((a) => (a.length > 24 ? `${a.slice(0, 20)}…(${a.length})` : a)).join(" ");
  // Arguments are refused before the database is opened, the same way whatever it is: those run
  // once, on SQLite. --data is checked against the column types the DataSource reports, which
  // differ by database: those run on both.
  const here = attacks.filter(([args]) => dialect === "sqlite" || args.includes("--data"));
  it.each(here.map(([args, problem]) => [title(args), args, problem] as const))("ormq %s fails with one line naming the problem, and touches nothing", async (_title, args, problem) => {
    const before = await snapshot();
    expectOneLine(await runCli(args, env()), problem);
    expect(await snapshot()).toEqual(before);
  });

  it("refuses bad ids in the admin API too", async () => {
    await expect(cancelTask("abc", { dataSource: ds })).rejects.toThrow(InvalidOptionError);
    await expect(retryTask("99999999999999999999", { dataSource: ds })).rejects.toThrow(/retryTask\(id\) must be a positive 64-bit integer/);
    await expect(showTask("1 OR 1=1", { dataSource: ds })).rejects.toThrow(/showTask\(id\) must be a positive 64-bit integer/);
    // Leading zeros name the same task.
    expect((await showTask(`00${pending.id}`, { dataSource: ds }))?.fields.id).toBe(pending.id);
  });

  it("stores a cancel reason with NUL and lone surrogates as storable text", async () => {
    const task = await ds.getRepository(SendEmail).save(SendEmail.create({ to: "nul@example.com" }));
    expect(await cancelTask(task.id, { dataSource: ds, reason: "a\u0000b\ud800c" })).toEqual({ outcome: "cancelled", id: task.id });
    const [row] = await ds.query(`SELECT last_error FROM ormq_tasks WHERE id = ${task.id}`);
    expect(row.last_error).toBe("cancelled: a\uFFFDb\uFFFDc");
    const long = await ds.getRepository(SendEmail).save(SendEmail.create({ to: "long@example.com" }));
    await cancelTask(long.id, { dataSource: ds, reason: "r".repeat(100_000) });
    const [cut] = await ds.query(`SELECT last_error FROM ormq_tasks WHERE id = ${long.id}`);
    expect(cut.last_error.length).toBeLessThan(5_000);
  });

  describe("list, show and stats of corrupt rows", () => {
    // Out of a Date's range: a REAL in SQLite's integer column, a huge bigint in PostgreSQL.
    const hugeInstant = dialect === "sqlite" ? 1e19 : 9e18;
    let corrupt: RecordRun;

    beforeAll(async () => {
      corrupt = await ds.getRepository(RecordRun).save(RecordRun.create({ label: "corrupt" }));
      const huge = dialect === "sqlite" ? "1e19" : "9000000000000000000";
      // Written around ormq, as a user or another program could.
      await ds.query(
        `UPDATE ormq_tasks SET status = 'failed', errors = 'not json {', result = '{oops', run_at = ${huge}, finished_at = -${huge},
           last_error = ${dialect === "postgres" ? "$1" : "?"}, queue = ${dialect === "postgres" ? "$2" : "?"} WHERE id = ${corrupt.id}`,
        [HOSTILE, "q\x1b[31mred"],
      );
      await ds.getRepository(TaskEventEntity).insert({ taskId: corrupt.id, kind: "failed", at: new Date(), attempt: 1, error: `first line\nsecond ${HOSTILE}` });
      await ds.query(`UPDATE ormq_task_events SET at = ${huge} WHERE task_id = ${corrupt.id} AND kind = 'failed'`);
    });

    it("ormq list prints them, escaped in the table and exact in JSON", async () => {
      const table = await runCli(["list"], env());
      expect({ code: table.code, stderr: table.stderr }).toEqual({ code: 0, stderr: "" });
      expectNoControl(table.stdout);
      expect(table.stdout).toContain("boom \\x1b]0;pwned\\x07\\x1b[2J \\u009b31m \\x7f end");
      expect(table.stdout).toContain("q\\x1b[31mred");
      expect(table.stdout).toContain(String(hugeInstant));

      const json = await runCli(["list", "--json"], env());
      expect(json.code).toBe(0);
      expectNoControl(json.stdout.replace(/\n/g, ""));
      const item = JSON.parse(json.stdout).find((t: { id: string }) => t.id === corrupt.id);
      expect(item).toMatchObject({ lastError: HOSTILE, queue: "q\x1b[31mred", runAt: hugeInstant, finishedAt: -hugeInstant });
    });

    it("ormq show prints every field and event, escaped in the table and exact in JSON", async () => {
      const table = await runCli(["show", corrupt.id], env());
      expect({ code: table.code, stderr: table.stderr }).toEqual({ code: 0, stderr: "" });
      expectNoControl(table.stdout);
      expect(table.stdout).toMatch(/errors\s+not json \{/);
      expect(table.stdout).toMatch(/result\s+\{oops/);
      expect(table.stdout).toContain("first line\\nsecond boom \\x1b]0;pwned");

      const json = await runCli(["show", corrupt.id, "--json"], env());
      expect(json.code).toBe(0);
      const shown = JSON.parse(json.stdout);
      expect(shown.fields).toMatchObject({ id: corrupt.id, errors: "not json {", result: "{oops", lastError: HOSTILE, runAt: hugeInstant, label: "corrupt" });
      expect(shown.events.find((e: { kind: string }) => e.kind === "failed")).toMatchObject({ at: hugeInstant, error: `first line\nsecond ${HOSTILE}` });
      // The API returns the same, and dates in range as Dates.
      const details = await showTask(corrupt.id, { dataSource: ds });
      expect(details?.fields.createdAt).toBeInstanceOf(Date);
      expect(details?.fields.errors).toBe("not json {");
    });

    it("ormq stats counts them", async () => {
      const table = await runCli(["stats"], env());
      expect({ code: table.code, stderr: table.stderr }).toEqual({ code: 0, stderr: "" });
      expectNoControl(table.stdout);
      expect(table.stdout).toContain("q\\x1b[31mred");
      const json = await runCli(["stats", "--json"], env());
      expect(JSON.parse(json.stdout).counts).toContainEqual({ queue: "q\x1b[31mred", type: "record_run", status: "failed", count: 1 });
    });
  });
});
