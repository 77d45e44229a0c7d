/**
 * Settings as people read them: the rows of the settings table in docs/workers.md and the lines of
 * `ormq process --help`, both made from the settings tables so neither can fall behind them.
 */
import { entries, envName, flagName, type SettingSpec, type SettingTable } from "./table";

/** One setting as the docs show it. */
export interface SettingRow {
  /** The name in code; null for a setting only the CLI has. */
  option: string | null;
  flag: string;
  env: string;
  default: string;
  /** The values accepted, with their bounds. */
  values: string;
  description: string;
}

/** The default as stated to people: its text, else "none" for an unset one, else the value shown. */
export function defaultText(spec: SettingSpec): string {
  if (spec.defaultText !== undefined) return spec.defaultText;
  return spec.default === null ? "none" : spec.parser.show(spec.default);
}

/** The rows of a table; `inCode` says whether code can give the settings too (a column of names). */
export function settingRows(table: SettingTable, inCode: boolean): SettingRow[] {
  return entries(table).map(([key, spec]) => ({
    option: inCode ? key : null,
    flag: flagName(key),
    env: envName(key),
    default: defaultText(spec),
    values: spec.parser.values,
    description: spec.description,
  }));
}

/** The markdown table of `rows`, one line per setting, ending with a newline. */
export function markdownTable(rows: readonly SettingRow[]): string {
  const code = (name: string | null) => (name === null ? "" : `\`${name}\``);
  const lines = [
    "| option | flag | environment | default | values | meaning |",
    "| --- | --- | --- | --- | --- | --- |",
    ...rows.map((r) => `| ${[code(r.option), code(r.flag), code(r.env), r.default, r.values, r.description].map(cell).join(" | ")} |`),
  ];
  return lines.join("\n") + "\n";
}

/** A table cell: a `|` would end it early. */
function cell(text: string): string {
  return text.replace(/\|/g, "\\|");
}

/** A flag's line in `--help`: what it does, its default and its variable. */
export function helpLine(key: string, spec: SettingSpec): string {
  return `${spec.description} (default ${defaultText(spec)}) [env ${envName(key)}]`;
}
