/**
 * Operating a worker from code: settings from the environment over options, dependency injection
 * through the task's context, and metrics in an application's own registry.
 */
import "reflect-metadata";
import { Registry } from "prom-client";
import { container } from "tsyringe";
import type { DataSource } from "typeorm";
import { ChildEntity } from "typeorm";
import { BaseTaskEntity, TaskDefinitionError, InvalidOptionError, processN } from "../src";
import { createMetrics } from "../src/metrics";
import { WORKER_SETTINGS } from "../src/worker/settings";
import { envName, flagName } from "../src/worker/settings";
import { resolveOptions } from "../src/worker/options";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Mailer, RecordRun, testEntities, UsesMailer } from "./fixtures/tasks";
import { createTestDb, memoryLogger, openDataSource, useTestDatabase, WITH_MARIADB } from "./support/db";
import fc from "fast-check";
import { checkExecutor, TaskRegistry, type TaskClass } from "../src/registry";
import { expectedSummary, reload } from "./support/helpers";
import { ormqFor } from "../src/client/client";

describe("worker settings", () => {
  let ds: DataSource;
  useTestDatabase("sqlite", (opened) => ({ ds } = opened), testEntities);

  it("flags beat the environment, which beats options in code, which beat defaults", () => {
    const code = { dataSource: ds, concurrency: 4, leaseMs: 60_000 };
    expect(resolveOptions(RecordRun, code, { env: {} })).toMatchObject({ concurrency: 4, leaseMs: 60_000, pollIntervalMs: 1_000 });
    const env = { ORMQ_CONCURRENCY: "8", ORMQ_POLL_INTERVAL_MS: "250", ORMQ_QUEUES: "a, b" };
    expect(resolveOptions(RecordRun, code, { env })).toMatchObject({ concurrency: 8, leaseMs: 60_000, pollIntervalMs: 250, queues: ["a", "b"] });
    expect(resolveOptions(RecordRun, code, { env, flags: { concurrency: "16", leaseMs: "2m" } })).toMatchObject({
      concurrency: 16,
      leaseMs: 120_000,
      pollIntervalMs: 250,
    });
  });

  it("names the variable or flag a bad value came from", () => {
    expect(() => resolveOptions(RecordRun, { dataSource: ds }, { env: { ORMQ_CONCURRENCY: "0" } })).toThrow(
      new InvalidOptionError('ORMQ_CONCURRENCY must be an integer of 1 or more, got "0"'),
    );
    expect(() => resolveOptions(RecordRun, { dataSource: ds }, { env: {}, flags: { queues: "a,,b" } })).toThrow(/--queues has an empty name/);
    expect(() => resolveOptions(RecordRun, { dataSource: ds }, { env: { ORMQ_LOG_LEVEL: "loud" } })).toThrow(/log level must be one of trace, debug/);
  });

  it("the settings table in docs/workers.md lists every setting with its flag and variable", () => {
    const page = readFileSync(join(__dirname, "..", "docs", "workers.md"), "utf8");
    for (const s of WORKER_SETTINGS) {
      expect(page).toContain(`| \`${s.key}\` | \`${flagName(s.key)}\` | \`${envName(s.key)}\` |`);
    }
  });
});

@ChildEntity("thread_without_module")
class ThreadWithoutModule extends BaseTaskEntity {
  static executor = "thread" as const;
  async run() {}
}

describe("thread and process task definitions", () => {
  it("executor, module and memoryLimitMb, whatever they hold, are taken or refused with one TaskDefinitionError naming the class", () => {
    const anything = fc.oneof(fc.anything(), fc.constantFrom("async", "thread", "process"), fc.integer(), fc.double());
    fc.assert(
      fc.property(anything, fc.option(fc.oneof(fc.string(), fc.anything()), { nil: undefined }), fc.option(anything, { nil: undefined }), (executor, module, memoryLimitMb) => {
        const cls = { name: "Hostile", executor, module, memoryLimitMb } as unknown as TaskClass;
        const valid =
          (executor === "async" || ((executor === "thread" || executor === "process") && typeof module === "string" && module !== "")) &&
          (memoryLimitMb === undefined || memoryLimitMb === null || (executor === "process" && Number.isInteger(memoryLimitMb) && (memoryLimitMb as number) >= 32 && (memoryLimitMb as number) <= 1_048_576));
        let thrown: unknown;
        try {
          checkExecutor(cls);
        } catch (err) {
          thrown = err;
        }
        if (valid) expect(thrown).toBeUndefined();
        else {
          expect(thrown).toBeInstanceOf(TaskDefinitionError);
          expect((thrown as Error).message).toMatch(/^task class Hostile/);
        }
      }),
    );
  });

  it("a thread class that does not name its module fails at start-up, naming the fix", async () => {
    const db = await createTestDb("sqlite");
    const ds = await openDataSource(db, [ThreadWithoutModule]);
    try {
      expect(() => ormqFor(ds).registry).toThrow(new TaskDefinitionError(
        "task class ThreadWithoutModule runs in a thread but does not say where it lives: add `static module = __filename`",
      ));
    } finally {
      await ds.destroy();
      await db.drop();
    }
  });
});

describe.each(WITH_MARIADB)("%s: services and metrics", (dialect) => {
  let ds: DataSource;
  useTestDatabase(dialect, (opened) => ({ ds } = opened), testEntities);

  it("a task resolves its services from a child of the worker's container, where a test swaps in a fake", async () => {
    class FakeMailer extends Mailer {
      override async send(to: string) {
        this.sent.push(to);
      }
    }
    const fake = new FakeMailer();
    const services = container.createChildContainer();
    services.registerInstance(Mailer, fake);
    const task = await ds.getRepository(UsesMailer).save(UsesMailer.create({ to: "ada@example.com" }));
    const summary = await processN(UsesMailer, 1, { dataSource: ds, container: services, logger: memoryLogger().logger });
    expect(summary).toEqual(expectedSummary({ processed: 1, succeeded: 1 }));
    expect(fake.sent).toEqual(["ada@example.com"]);
    // The attempt's EntityManager, logger and context are registered in its container.
    expect((await reload(ds, task)).result).toEqual({ sameManager: true, sameLogger: true, sameContext: true });
  });

  it("records finished attempts into an application's registry, and reads queue state at scrape time", async () => {
    const registry = new Registry();
    const metrics = createMetrics({ dataSource: ds, registry });
    await ds.getRepository(RecordRun).save([RecordRun.create({ label: "1" }), RecordRun.create({ label: "2" })]);
    await ds.getRepository(RecordRun).save(RecordRun.create({ label: "3" }).onQueue("later"));
    let text = await registry.metrics();
    expect(text).toContain('ormq_tasks_ready{queue="records"} 2');
    expect(text).toContain('ormq_tasks_ready{queue="later"} 1');
    expect(text).toMatch(/ormq_oldest_ready_task_age_seconds\{queue="records"\} \d/);
    await processN(RecordRun, 3, { dataSource: ds, metrics, logger: memoryLogger().logger });
    text = await registry.metrics();
    expect(text).toContain('ormq_tasks_finished_total{type="record_run",outcome="succeeded"} 3');
    expect(text).toContain('ormq_task_run_seconds_count{type="record_run"} 3');
  });
});
