/**
 * The worker's settings: the one table from which the option types (`WorkerOptions`), the defaults,
 * the checks, `ormq process`'s flags, the `ORMQ_…` variables and the settings table in
 * docs/workers.md are all derived (tests/settingsDoc.test.ts fails when the docs differ).
 *
 * Task defaults (queue, maxAttempts, retry, timeout) are not here on purpose: they belong to the
 * task classes, where they are reviewed with the code that depends on them.
 */
import { availableParallelism } from "node:os";
import { InvalidOptionError } from "../errors";
import { LOG_LEVELS } from "../logger";
import { autoOrCount, duration, integer, nameList, oneOf, onOff, postgresUrl, text } from "../settings/parsers";
import { entries, resolveTable, setting, type GivenSettings, type ResolvedSettings, type SettingSources, type SettingSpec } from "../settings/table";
import { MAX_TIMER_MS } from "../storable";
import { AUTO_MAX_HELD } from "./prefetchGauge";

export { envName, flagName } from "../settings/table";

/**
 * The most of anything a worker counts (concurrency, batch size, prefetch, abandoned runs): far
 * beyond what one process can use, and small enough that nothing derived from it overflows.
 */
const MAX_COUNT = 100_000;

/** Why durations stop at 2^31 - 1 ms: said in each refusal, so the limit is not a surprise. */
export const TIMER_NOTE = "(about 24.8 days: node's timers cannot wait longer, and a longer one would fire at once)";

/** A duration a node timer can wait for. */
const timerMs = duration({ min: 1, max: MAX_TIMER_MS, why: TIMER_NOTE });

/** What the computed defaults read: settings whose own defaults are values (see resolveTable). */
export interface Earlier {
  concurrency: number;
  prefetch: number | "auto";
  leaseMs: number;
}

/** Every worker setting, in the order of the table in docs/workers.md. */
export const WORKER_SETTING_TABLE = {
  types: setting({
    parser: nameList("task type keys"),
    default: null,
    defaultText: "every type of the class",
    description: "Task types (discriminator keys) to run; `ormq process` also takes them as arguments.",
  }),
  queues: setting({ parser: nameList("queue names"), default: null, defaultText: "every queue", description: "Queues to take tasks from." }),
  concurrency: setting({ parser: integer({ min: 1, max: MAX_COUNT }), default: 10, description: "Tasks run at once (`processOne`: 1)." }),
  batchSize: setting({
    parser: integer({ min: 1, max: MAX_COUNT }),
    default: (s: Earlier) => Math.min(MAX_COUNT, s.prefetch === "auto" ? Math.max(s.concurrency, AUTO_MAX_HELD) : s.concurrency + s.prefetch),
    defaultText: `concurrency + prefetch; with auto, ${AUTO_MAX_HELD} (or the concurrency, if larger)`,
    description: "Most tasks taken by one claim.",
  }),
  prefetch: setting({
    parser: autoOrCount(MAX_COUNT),
    default: "auto",
    description:
      "Tasks claimed ahead of free slots and kept in a local buffer, held like running tasks: `auto` sizes it from run and claim times, a number fixes it, 0 claims only for free slots.",
  }),
  pollIntervalMs: setting({ parser: timerMs, default: 1_000, description: "How often an idle worker looks for tasks when no wake-up came." }),
  leaseMs: setting({ parser: timerMs, default: 30_000, description: "How long a claimed task is held (`lockedUntil`) without a heartbeat before another worker may rescue it." }),
  heartbeatIntervalMs: setting({
    parser: timerMs,
    // A third of the lease leaves two renewals' time before the lease runs out.
    default: (s: Earlier) => Math.min(5_000, Math.floor(s.leaseMs / 3)),
    defaultText: "min(5s, lease/3)",
    description: "How often the worker renews its tasks' leases and its `ormq_workers` row; at most half the lease.",
  }),
  rescueIntervalMs: setting({ parser: timerMs, default: 5_000, description: "How often the worker returns tasks with expired leases to the queue (±20%)." }),
  gracePeriodMs: setting({
    parser: duration({ min: 0, max: MAX_TIMER_MS, why: TIMER_NOTE }),
    default: 10_000,
    description: "On stop, how long running tasks may finish before their signal aborts.",
  }),
  maxAbandonedRuns: setting({
    parser: integer({ min: 1, max: MAX_COUNT }),
    default: 5,
    description:
      "Timed-out or cancelled runs, and hooks past `hookTimeoutMs`, still running: at this many the worker stops claiming and asks for a restart (`WorkerNeedsRestartError`).",
  }),
  hookTimeoutMs: setting({ parser: timerMs, default: 30_000, description: "How long each hook (`error()`, `shouldRetry()`, the retry policy, `failed()`) may take." }),
  threads: setting({
    parser: integer({ min: 1, max: 1_024 }),
    default: (s: Earlier) => Math.min(s.concurrency, availableParallelism()),
    defaultText: "min(concurrency, CPUs)",
    description: 'Size of the thread pool for `static executor = "thread"` tasks.',
  }),
  taskProcesses: setting({
    parser: integer({ min: 1, max: 1_024 }),
    default: (s: Earlier) => Math.min(s.concurrency, availableParallelism()),
    defaultText: "min(concurrency, CPUs)",
    description: 'Size of the process pool for `static executor = "process"` tasks.',
  }),
  taskProcessMaxTasks: setting({
    parser: integer({ min: 1, max: MAX_COUNT }),
    default: 1_000,
    description: "A task process is replaced after this many attempts, so that leaks do not pile up.",
  }),
  taskProcessRecycleMb: setting({
    parser: integer({ min: 1, max: 1_048_576 }),
    default: 1_024,
    description: "A task process holding more than this many MB resident after an attempt is replaced.",
  }),
  bootstrap: setting({
    parser: text("a module path"),
    default: null,
    defaultText: "none; for `ormq process`, the `-d` module",
    description:
      "The module a task thread or process loads before running its tasks: it exports the DataSource (and optionally a tsyringe `container`). Required by `static executor = \"thread\"` or `\"process\"` tasks.",
  }),
  pooler: setting({
    parser: oneOf(["none", "transaction"]),
    default: "none",
    description:
      "PostgreSQL: `transaction` when the DataSource connects through a transaction-mode pooler (PgBouncer's `pool_mode = transaction`): the worker keeps no session state (unnamed statements; no LISTEN through the pooler: give `listenUrl`, or it polls).",
  }),
  listenUrl: setting({
    parser: postgresUrl(),
    default: null,
    defaultText: "none",
    description: "PostgreSQL: a connection URL straight to the server, not through the pooler, for the worker's LISTEN, so wake-ups work behind a pooler.",
  }),
  scheduler: setting({
    parser: onOff(),
    default: true,
    description: "Whether this worker may enqueue the tasks of schedules (`static schedule`, `createSchedule`): one worker at a time does (the holder of the schedules' lease), and each tick is one task whoever writes it.",
  }),
  logLevel: setting({
    parser: oneOf(LOG_LEVELS),
    // Null, not "info": without one, the worker logs through the shared default logger.
    default: null,
    defaultText: "info",
    description: "The level of ormq's default logger (not of a `logger` you pass).",
    subject: "log level",
  }),
};

/** The table's shape, checked against what the computed defaults read. */
export type WorkerSettingTable = typeof WORKER_SETTING_TABLE;

/** Worker settings as code gives them (part of `WorkerOptions`). */
export type GivenWorkerSettings = GivenSettings<WorkerSettingTable>;

/** Every worker setting, resolved and checked. */
export type WorkerSettings = ResolvedSettings<WorkerSettingTable>;

// The computed defaults read `Earlier`: a compile error here means it no longer matches the table.
const earlierMatchesTable: (s: WorkerSettings) => Earlier = (s) => s;
void earlierMatchesTable;

/** A worker setting with its name (the table as a list, for those that walk it). */
export interface Setting extends SettingSpec {
  key: keyof WorkerSettingTable;
}

/** Every worker setting with its name, in table order. */
export const WORKER_SETTINGS: readonly Setting[] = entries(WORKER_SETTING_TABLE).map(([key, spec]) => ({ ...spec, key: key as Setting["key"] }));

/**
 * Resolves the worker settings once: flags, then the environment (`process.env` unless given), then
 * `given`, then defaults; and checks the rule that ties two of them.
 */
export function resolveWorkerSettings(given: GivenWorkerSettings, sources: SettingSources = {}): WorkerSettings {
  const settings = resolveTable(WORKER_SETTING_TABLE, given, { flags: sources.flags, env: sources.env ?? process.env });
  if (settings.heartbeatIntervalMs * 2 > settings.leaseMs) {
    throw new InvalidOptionError(
      `option \`heartbeatIntervalMs\` (${settings.heartbeatIntervalMs}) must be at most half of \`leaseMs\` (${settings.leaseMs}), or live tasks would be rescued`,
    );
  }
  return settings;
}
