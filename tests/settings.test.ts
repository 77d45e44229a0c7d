/**
 * The settings tables (src/worker/settings.ts, src/cli/workerCommand/flags.ts) and their one resolution:
 * pure, no database. The worker's own precedence tests are in operate.test.ts.
 */
import { buildProgram } from "../src/cli/program";
import { PROCESS_SETTING_TABLE, readProcessSettings } from "../src/cli/workerCommand/flags";
import { InvalidOptionError } from "../src/errors";
import { entries, envName, flagName, resolveTable } from "../src/settings/table";
import type { ResolvedOptions, WorkerOptions } from "../src/worker/options";
import { resolveWorkerSettings, WORKER_SETTING_TABLE, WORKER_SETTINGS } from "../src/worker/settings";

/** True when A and B are the same type (not merely assignable). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

// Compile-time: the option types derived from the table keep the public shape they had when they
// were written by hand (a change here is a change of ormq's API). `npx tsc` fails on a drift.
const publicShape: { [K in keyof WorkerOptions]-?: boolean } & Record<string, true> = {
  types: true as Equal<WorkerOptions["types"], string[] | undefined>,
  queues: true as Equal<WorkerOptions["queues"], string[] | undefined>,
  concurrency: true as Equal<WorkerOptions["concurrency"], number | undefined>,
  batchSize: true as Equal<WorkerOptions["batchSize"], number | undefined>,
  prefetch: true as Equal<WorkerOptions["prefetch"], number | "auto" | undefined>,
  pooler: true as Equal<WorkerOptions["pooler"], "none" | "transaction" | undefined>,
  listenUrl: true as Equal<WorkerOptions["listenUrl"], string | undefined>,
  scheduler: true as Equal<WorkerOptions["scheduler"], boolean | undefined>,
  pollIntervalMs: true as Equal<WorkerOptions["pollIntervalMs"], number | undefined>,
  gracePeriodMs: true as Equal<WorkerOptions["gracePeriodMs"], number | undefined>,
  leaseMs: true as Equal<WorkerOptions["leaseMs"], number | undefined>,
  heartbeatIntervalMs: true as Equal<WorkerOptions["heartbeatIntervalMs"], number | undefined>,
  rescueIntervalMs: true as Equal<WorkerOptions["rescueIntervalMs"], number | undefined>,
  maxAbandonedRuns: true as Equal<WorkerOptions["maxAbandonedRuns"], number | undefined>,
  hookTimeoutMs: true as Equal<WorkerOptions["hookTimeoutMs"], number | undefined>,
  logLevel: true as Equal<WorkerOptions["logLevel"], string | undefined>,
  threads: true as Equal<WorkerOptions["threads"], number | undefined>,
  taskProcesses: true as Equal<WorkerOptions["taskProcesses"], number | undefined>,
  taskProcessMaxTasks: true as Equal<WorkerOptions["taskProcessMaxTasks"], number | undefined>,
  taskProcessRecycleMb: true as Equal<WorkerOptions["taskProcessRecycleMb"], number | undefined>,
  bootstrap: true as Equal<WorkerOptions["bootstrap"], string | undefined>,
  dataSource: true,
  prune: true,
  signal: true,
  logger: true,
  container: true,
  resolver: true,
  metrics: true,
  onAttemptFinished: true,
};
const resolvedShape: Record<string, true> = {
  types: true as Equal<ResolvedOptions["types"], string[] | null>,
  queues: true as Equal<ResolvedOptions["queues"], string[] | null>,
  prefetch: true as Equal<ResolvedOptions["prefetch"], number | "auto">,
  listenUrl: true as Equal<ResolvedOptions["listenUrl"], string | null>,
  bootstrap: true as Equal<ResolvedOptions["bootstrap"], string | null>,
  pooler: true as Equal<ResolvedOptions["pooler"], "none" | "transaction">,
  scheduler: true as Equal<ResolvedOptions["scheduler"], boolean>,
  heartbeatIntervalMs: true as Equal<ResolvedOptions["heartbeatIntervalMs"], number>,
  noLogLevel: true as Equal<"logLevel" extends keyof ResolvedOptions ? 1 : 0, 0>,
};

describe("the settings tables", () => {
  it("keep the public option types (checked at compile time above)", () => {
    expect(Object.values(publicShape).every((v) => v === true)).toBe(true);
    expect(Object.values(resolvedShape).every((v) => v === true)).toBe(true);
  });

  it("state defaults that pass their own checks, and names that are unique", () => {
    const tables = [WORKER_SETTING_TABLE, PROCESS_SETTING_TABLE];
    const names = new Set<string>();
    for (const table of tables) {
      for (const [key, spec] of entries(table)) {
        if (spec.default !== null && typeof spec.default !== "function") expect(spec.parser.check(spec.default, key)).toEqual(spec.default);
        expect(spec.description).not.toBe("");
        for (const name of [flagName(key), envName(key)]) {
          expect(names.has(name)).toBe(false);
          names.add(name);
        }
      }
    }
    expect(WORKER_SETTINGS.map((s) => s.key)).toEqual(Object.keys(WORKER_SETTING_TABLE));
  });

  it("resolve to the defaults when nothing is given, computed ones from the others", () => {
    const defaults = resolveWorkerSettings({}, { env: {} });
    expect(defaults).toMatchObject({ types: null, concurrency: 10, batchSize: 500, prefetch: "auto", leaseMs: 30_000, heartbeatIntervalMs: 5_000, pooler: "none", scheduler: true, logLevel: null });
    expect(resolveWorkerSettings({ leaseMs: 6_000, prefetch: 5, concurrency: 2 }, { env: {} })).toMatchObject({ heartbeatIntervalMs: 2_000, batchSize: 7, threads: expect.any(Number) });
  });

  it("read each setting from its flag, else its variable, else code: an empty text is none", () => {
    const resolved = resolveTable(WORKER_SETTING_TABLE, { concurrency: 3, leaseMs: 9_000 }, { flags: { concurrency: "", leaseMs: "1m" }, env: { ORMQ_CONCURRENCY: "", ORMQ_LEASE_MS: "lots" } });
    expect(resolved).toMatchObject({ concurrency: 3, leaseMs: 60_000 });
  });

  it("refuse a bad value once, naming the flag, the variable or the setting", () => {
    expect(() => resolveWorkerSettings({}, { env: { ORMQ_SCHEDULER: "maybe" } })).toThrow(new InvalidOptionError('ORMQ_SCHEDULER must be on or off, got "maybe"'));
    expect(() => resolveWorkerSettings({}, { env: {}, flags: { prefetch: "many" } })).toThrow(/^--prefetch must be "auto" or an integer of 0 or more/);
    expect(() => resolveWorkerSettings({}, { env: { ORMQ_THREADS: "5000" } })).toThrow(new InvalidOptionError("option `threads` must be an integer from 1 to 1024, got 5000"));
    expect(() => resolveWorkerSettings({ scheduler: "yes" as never }, { env: {} })).toThrow(/^option `scheduler` must be true or false, got "yes"$/);
    // A computed default is checked too: a 2 ms lease leaves no heartbeat interval.
    expect(() => resolveWorkerSettings({ leaseMs: 2 }, { env: {} })).toThrow(/^option `heartbeatIntervalMs` must be an integer from 1 to/);
    expect(() => resolveWorkerSettings({ leaseMs: 1_000, heartbeatIntervalMs: 600 }, { env: {} })).toThrow(/must be at most half of `leaseMs`/);
  });
});

describe("ormq process's settings", () => {
  it("are resolved once, the log level with them, flags over the environment", () => {
    const none = readProcessSettings([], {}, {});
    expect(none).toMatchObject({ processes: 1, metricsPort: null, worker: { logLevel: null, types: null, bootstrap: null } });
    const fromEnv = readProcessSettings(["a", "b"], { dataSource: "dist/ds.js" }, { ORMQ_LOG_LEVEL: "debug", ORMQ_PROCESSES: "3", ORMQ_METRICS_PORT: "0" });
    expect(fromEnv).toMatchObject({ processes: 3, metricsPort: 0, worker: { logLevel: "debug", types: ["a", "b"], bootstrap: "dist/ds.js" } });
    const flagsWin = readProcessSettings([], { logLevel: "warn", processes: "2", types: "c" }, { ORMQ_LOG_LEVEL: "debug", ORMQ_PROCESSES: "3", ORMQ_BOOTSTRAP: "boot.js", ORMQ_DATA_SOURCE: "ds.js" });
    expect(flagsWin).toMatchObject({ processes: 2, worker: { logLevel: "warn", types: ["c"], bootstrap: "boot.js" } });
  });

  it("refuse task types given both as arguments and as --types, and bad values before anything opens", () => {
    expect(() => readProcessSettings(["a"], { types: "b" }, {})).toThrow(/as arguments or as --types, not both/);
    expect(() => readProcessSettings([], { processes: "2000" }, {})).toThrow(new InvalidOptionError("--processes (ORMQ_PROCESSES) must be an integer from 1 to 1024, got 2000"));
    expect(() => readProcessSettings([], {}, { ORMQ_LOG_LEVEL: "loud" })).toThrow(/^log level must be one of trace, debug, info, warn, error, fatal, silent, got "loud"$/);
  });

  it("has a flag for every setting of both tables, and no other setting flag", () => {
    const program = buildProgram(() => {});
    const processCmd = program.commands.find((c) => c.name() === "process")!;
    const longs = processCmd.options.map((o) => o.long);
    for (const key of [...Object.keys(WORKER_SETTING_TABLE), ...Object.keys(PROCESS_SETTING_TABLE)]) expect(longs).toContain(flagName(key));
    expect(longs.filter((l) => !["--data-source", "--database-url", "--json", "--until-empty"].includes(l!)).length).toBe(Object.keys(WORKER_SETTING_TABLE).length + Object.keys(PROCESS_SETTING_TABLE).length);
  });
});
