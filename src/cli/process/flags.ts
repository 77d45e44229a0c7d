import { settingsFrom, type Setting } from "../../worker/settings";
import type { ConnectionFlags } from "../connect";

/** The flags `ormq process` receives (worker settings by their option names, as commander gives them). */
export interface ProcessFlags extends ConnectionFlags, Record<string, unknown> {
  processes?: string;
  untilEmpty?: boolean;
  metricsPort?: string;
  json?: boolean;
}

/** The command's own settings, read like the worker's (flag, then ORMQ_… variable). */
const PROCESS_SETTINGS: readonly Setting<"processes" | "metricsPort">[] = [
  { key: "processes", kind: "positiveInteger", defaultText: "1", description: "Worker processes to fork and supervise.", max: 1_024 },
  { key: "metricsPort", kind: "nonNegativeInteger", defaultText: "none", description: "Serve Prometheus metrics on this port.", max: 65_535 },
];

export interface CliOnly {
  processes: number;
  metricsPort: number | null;
}

export function readCliOnly(flags: ProcessFlags): CliOnly {
  const given: Record<string, string | undefined> = { processes: flags.processes, metricsPort: flags.metricsPort };
  const read = settingsFrom(PROCESS_SETTINGS, { flags: given, env: process.env });
  return { processes: (read.processes as number | undefined) ?? 1, metricsPort: (read.metricsPort as number | undefined) ?? null };
}

