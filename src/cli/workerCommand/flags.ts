/**
 * `ormq process`'s settings, resolved once at the edge: the worker settings (worker/settings.ts)
 * and the command's own (below), each from its flag, else its `ORMQ_…` variable, else its default.
 * Nothing after this reads a setting from the flags or the environment.
 */
import { InvalidOptionError } from "../../errors";
import { markdownTable, settingRows } from "../../settings/docs";
import { integer } from "../../settings/parsers";
import { envName, flagName, resolveTable, setting, type ResolvedSettings } from "../../settings/table";
import { resolveWorkerSettings, WORKER_SETTING_TABLE, type WorkerSettings } from "../../worker/settings";
import type { ConnectionFlags } from "../connect";

/** The flags `ormq process` receives (settings by their names in code, as commander gives them). */
export interface ProcessFlags extends ConnectionFlags, Record<string, unknown> {
  untilEmpty?: boolean;
  json?: boolean;
}

/** Who a refusal names, for a setting only text can give. */
const named = (key: string) => `${flagName(key)} (${envName(key)})`;

/** The command's own settings, which no worker option has. */
export const PROCESS_SETTING_TABLE = {
  processes: setting({
    parser: integer({ min: 1, max: 1_024 }),
    default: 1,
    description: "`ormq process`: worker processes to fork and supervise; a crashed one is restarted.",
    subject: named("processes"),
  }),
  metricsPort: setting({
    parser: integer({ min: 0, max: 65_535 }),
    default: null,
    defaultText: "none",
    description: "`ormq process`: serve Prometheus metrics at `http://0.0.0.0:<port>/metrics` (0: any free port).",
    subject: named("metricsPort"),
  }),
};

/** Every setting of one `ormq process`. */
export interface ProcessSettings extends ResolvedSettings<typeof PROCESS_SETTING_TABLE> {
  worker: WorkerSettings;
}

/**
 * Resolves every setting of the command once. `types` are the command's arguments: the same
 * setting as `--types`. A thread or process task's bootstrap module defaults to the `-d` module,
 * which imports the task classes (`--bootstrap` and `ORMQ_BOOTSTRAP` win over it).
 */
export function readProcessSettings(types: readonly string[], flags: ProcessFlags, env: Record<string, string | undefined>): ProcessSettings {
  const texts: Record<string, string> = {};
  for (const key of [...Object.keys(WORKER_SETTING_TABLE), ...Object.keys(PROCESS_SETTING_TABLE)]) {
    if (typeof flags[key] === "string") texts[key] = flags[key];
  }
  if (types.length > 0) {
    if (texts.types !== undefined) throw new InvalidOptionError("give the task types as arguments or as --types, not both");
    texts.types = types.join(",");
  }
  const worker = resolveWorkerSettings({ bootstrap: flags.dataSource ?? env.ORMQ_DATA_SOURCE }, { flags: texts, env });
  return { ...resolveTable(PROCESS_SETTING_TABLE, {}, { flags: texts, env }), worker };
}

/**
 * The settings table of docs/workers.md: every worker setting, then the command's own.
 * tests/settingsDoc.test.ts fails when the page's table differs from this.
 */
export function settingsMarkdown(): string {
  return markdownTable([...settingRows(WORKER_SETTING_TABLE, true), ...settingRows(PROCESS_SETTING_TABLE, false)]);
}
