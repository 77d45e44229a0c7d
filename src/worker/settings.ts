/**
 * The worker settings that can also come from the environment and the command line. Each has one
 * name in code (`leaseMs`), one flag (`--lease-ms`) and one environment variable (`ORMQ_LEASE_MS`),
 * derived from that name so they cannot drift apart. Precedence: flags, then the environment, then
 * options given in code, then defaults.
 *
 * Task defaults (queue, maxAttempts, retry, timeout) are not here on purpose: they belong to the
 * task classes, where they are reviewed with the code that depends on them.
 */
import { InvalidOptionError } from "../errors";
import { parseDuration, parseInteger } from "../parse";
import type { WorkerOptions } from "./workerOptions";

type Kind = "positiveInteger" | "nonNegativeInteger" | "autoOrCount" | "durationMs" | "list" | "string" | "onOff";

/** A worker option that has a flag and an environment variable. */
export interface Setting<K extends string = keyof WorkerOptions> {
  key: K;
  kind: Kind;
  /** The default, as the settings table in docs/workers.md shows it. */
  defaultText: string;
  description: string;
  /** The largest value accepted (integers). */
  max?: number;
}

/** Every worker option with a flag and an environment variable, in the order of the table in docs/workers.md. */
export const WORKER_SETTINGS: readonly Setting[] = [
  { key: "types", kind: "list", defaultText: "every type", description: "Task types (discriminator keys) to run; `ormq process` takes them as arguments." },
  { key: "queues", kind: "list", defaultText: "every queue", description: "Queues to take tasks from, comma-separated." },
  { key: "concurrency", kind: "positiveInteger", defaultText: "10", description: "Tasks run at once by one worker process." },
  { key: "batchSize", kind: "positiveInteger", defaultText: "concurrency + prefetch; with auto, 500 (or the concurrency, if larger)", description: "Most tasks taken by one claim." },
  { key: "prefetch", kind: "autoOrCount", defaultText: "auto", description: "Tasks claimed ahead of free slots, kept in a local buffer: `auto` sizes it from run and claim times, a number fixes it." },
  { key: "pollIntervalMs", kind: "durationMs", defaultText: "1s", description: "How often an idle worker looks for tasks without a wake-up." },
  { key: "leaseMs", kind: "durationMs", defaultText: "30s", description: "How long a claimed task is held before another worker may rescue it." },
  { key: "heartbeatIntervalMs", kind: "durationMs", defaultText: "min(5s, lease/3)", description: "How often leases are renewed; at most half the lease." },
  { key: "rescueIntervalMs", kind: "durationMs", defaultText: "5s", description: "How often expired leases are looked for." },
  { key: "gracePeriodMs", kind: "durationMs", defaultText: "10s", description: "On stop, how long running tasks may finish before their signal aborts." },
  { key: "maxAbandonedRuns", kind: "positiveInteger", defaultText: "5", description: "Runs (or hooks) still running past their abort signal or deadline before the worker asks to be restarted." },
  { key: "hookTimeoutMs", kind: "durationMs", defaultText: "30s", description: "How long each hook (error(), shouldRetry(), the retry policy, failed()) may take." },
  { key: "threads", kind: "positiveInteger", defaultText: "min(concurrency, CPUs)", description: "Size of the thread pool for `static executor = \"thread\"` tasks." },
  { key: "taskProcesses", kind: "positiveInteger", defaultText: "min(concurrency, CPUs)", description: "Size of the process pool for `static executor = \"process\"` tasks." },
  { key: "taskProcessMaxTasks", kind: "positiveInteger", defaultText: "1000", description: "A task process is replaced after this many attempts (leaks do not pile up)." },
  { key: "taskProcessRecycleMb", kind: "positiveInteger", defaultText: "1024", description: "A task process holding more than this many MB resident after an attempt is replaced." },
  { key: "bootstrap", kind: "string", defaultText: "none", description: "Module that thread and process tasks load: exports the DataSource (and a tsyringe container)." },
  { key: "pooler", kind: "string", defaultText: "none", description: "PostgreSQL: `transaction` when the DataSource goes through a transaction-mode pooler (PgBouncer): no session state, no LISTEN through it." },
  { key: "listenUrl", kind: "string", defaultText: "none", description: "PostgreSQL: a direct connection URL for LISTEN (wake-ups), when the DataSource's goes through a pooler." },
  { key: "scheduler", kind: "onOff", defaultText: "on", description: "Enqueue the tasks of schedules (class `static schedule` and `createSchedule`): `on` or `off`. Any number of workers may run one." },
  { key: "logLevel", kind: "string", defaultText: "info", description: "trace, debug, info, warn, error, fatal or silent." },
];

/** `leaseMs` → `--lease-ms`. */
export function flagName(key: string): string {
  return "--" + key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

/** `leaseMs` → `ORMQ_LEASE_MS`. */
export function envName(key: string): string {
  return "ORMQ_" + key.replace(/[A-Z]/g, (c) => "_" + c).toUpperCase();
}

/**
 * Reads the settings present in `values` (environment variables, or flags as strings) into worker
 * options. A bad value throws an error naming where it came from (`ORMQ_CONCURRENCY`, `--concurrency`).
 */
export function readSettings(
  values: Record<string, string | undefined>,
  source: "env" | "flags",
  skip: ReadonlySet<string> = new Set(),
): Partial<WorkerOptions> {
  return readSettingsOf(WORKER_SETTINGS, values, source, skip) as Partial<WorkerOptions>;
}

/**
 * The same, for any list of settings (the CLI's own, such as `--processes`): one mechanism, one
 * precedence. Flags win over the environment: see `settingsFrom`.
 */
export function readSettingsOf<K extends string>(
  list: readonly Setting<K>[],
  values: Record<string, string | undefined>,
  source: "env" | "flags",
  skip: ReadonlySet<string> = new Set(),
): Partial<Record<K, unknown>> {
  const options: Partial<Record<K, unknown>> = {};
  for (const setting of list) {
    if (skip.has(setting.key)) continue;
    const name = source === "env" ? envName(setting.key) : setting.key;
    const raw = values[name];
    if (raw === undefined || raw === "") continue;
    const label = source === "env" ? envName(setting.key) : flagName(setting.key);
    options[setting.key] = parse(setting.kind, raw, label, setting.max);
  }
  return options;
}

/** Settings from flags, then from the environment for those no flag gave. */
export function settingsFrom<K extends string>(
  list: readonly Setting<K>[],
  sources: { flags: Record<string, string | undefined>; env: Record<string, string | undefined> },
): Partial<Record<K, unknown>> {
  const fromFlags = readSettingsOf(list, sources.flags, "flags");
  return { ...readSettingsOf(list, sources.env, "env", new Set(Object.keys(fromFlags))), ...fromFlags };
}

function parse(kind: Kind, raw: string, label: string, max?: number): unknown {
  const text = raw.trim();
  switch (kind) {
    case "string":
      return text;
    case "onOff": {
      const word = text.toLowerCase();
      if (["on", "true", "1", "yes"].includes(word)) return true;
      if (["off", "false", "0", "no"].includes(word)) return false;
      throw new InvalidOptionError(`${label} must be on or off, got ${JSON.stringify(raw)}`);
    }
    case "list": {
      const items = text.split(",").map((s) => s.trim());
      if (items.some((s) => s === "")) throw new InvalidOptionError(`${label} has an empty name in ${JSON.stringify(raw)}`);
      return items;
    }
    case "durationMs":
      return parseDuration(raw, label, Number.MAX_SAFE_INTEGER);
    case "autoOrCount":
      if (text.toLowerCase() === "auto") return "auto";
      if (!/^\d+$/.test(text)) throw new InvalidOptionError(`${label} must be "auto" or an integer of 0 or more, got ${JSON.stringify(raw)}`);
      return parseInteger(raw, label, 0, max);
    case "positiveInteger":
    case "nonNegativeInteger":
      return parseInteger(raw, label, kind === "positiveInteger" ? 1 : 0, max);
  }
}
