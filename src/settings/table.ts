/**
 * A settings table and how it is resolved. Each setting is one entry (its kind with bounds, its
 * default, its description) under one name in code (`leaseMs`), from which its flag
 * (`--lease-ms`) and environment variable (`ORMQ_LEASE_MS`) are derived, so they cannot drift
 * apart. Precedence, per setting: a flag, then the environment, then the value given in code, then
 * the default.
 */
import type { Parser } from "./parsers";

/**
 * A setting's default: a value; null, for a setting that stays unset unless given; or a function
 * of the settings whose defaults are values (see `resolveTable`).
 */
export type Default<T> = T | null | ((earlier: never) => T);

/** One setting: what it holds, its default, and what it is for. */
export interface SettingSpec<T = unknown, D extends Default<T> = Default<T>> {
  readonly parser: Parser<T>;
  readonly default: D;
  /** The default as the docs and `--help` state it, when it is null or computed. */
  readonly defaultText?: string;
  readonly description: string;
  /** What a refusal calls the setting, when not `option \`key\`` (kept where tests match it). */
  readonly subject?: string;
}

/** Settings by their names in code, in the order the docs list them. */
export type SettingTable = Readonly<Record<string, SettingSpec>>;

/** Declares one setting; infers its value type from its parser and keeps its default's type. */
export function setting<T, const D extends Default<T>>(spec: SettingSpec<T, D>): SettingSpec<T, D> {
  return spec;
}

type ValueOf<S> = S extends { parser: Parser<infer T> } ? T : never;

/** What code may give: every setting, optional, by its value type. */
export type GivenSettings<TB> = { -readonly [K in keyof TB]?: ValueOf<TB[K]> };

/** Every setting resolved: its value, or null where the default is null and none was given. */
export type ResolvedSettings<TB> = {
  -readonly [K in keyof TB]: TB[K] extends { parser: Parser<infer T>; default: infer D } ? (null extends D ? T | null : T) : never;
};

/** Text by name: flags keyed by the setting's name (as commander gives them), variables by theirs. */
export interface SettingSources {
  env?: Record<string, string | undefined>;
  flags?: Record<string, string | undefined>;
}

/** `leaseMs` → `--lease-ms`. */
export function flagName(key: string): string {
  return "--" + key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

/** `leaseMs` → `ORMQ_LEASE_MS`. */
export function envName(key: string): string {
  return "ORMQ_" + key.replace(/[A-Z]/g, (c) => "_" + c).toUpperCase();
}

/** The entries of a table with their names, in table order. */
export function entries(table: SettingTable): [string, SettingSpec][] {
  return Object.entries(table);
}

/**
 * Resolves every setting of `table` once: flag, else environment variable, else `given`, else the
 * default; each value is checked by its kind, and a refusal names the flag or variable the text
 * came from (text that is no value of the kind) or the setting (a value out of its bounds).
 *
 * Computed defaults are filled last, from the settings resolved before them; so a computed default
 * may read only settings whose defaults are values (none reads another computed one).
 */
export function resolveTable<TB extends SettingTable>(table: TB, given: GivenSettings<TB>, sources: SettingSources = {}): ResolvedSettings<TB> {
  const resolved: Record<string, unknown> = {};
  const computed: [string, SettingSpec][] = [];
  for (const [key, spec] of entries(table)) {
    const value = fromSources(key, spec, sources) ?? (given as Record<string, unknown>)[key];
    if (value !== undefined && value !== null) resolved[key] = spec.parser.check(value, subjectOf(key, spec));
    else if (typeof spec.default === "function") computed.push([key, spec]);
    else resolved[key] = spec.default;
  }
  const earlier = { ...resolved };
  for (const [key, spec] of computed) {
    // A computed default is checked too: it may fall outside the bounds (a lease of 2 ms leaves no
    // heartbeat interval), and the refusal should say which setting.
    resolved[key] = spec.parser.check((spec.default as (earlier: unknown) => unknown)(earlier), subjectOf(key, spec));
  }
  return resolved as ResolvedSettings<TB>;
}

/** The flag's text, else the variable's, read as a value; undefined when neither is given. */
function fromSources(key: string, spec: SettingSpec, sources: SettingSources): unknown {
  // An empty text counts as not given (`ORMQ_CONCURRENCY=` in a shell script).
  const flag = sources.flags?.[key];
  if (flag !== undefined && flag !== "") return spec.parser.fromText(flag, flagName(key));
  // A setting given as a flag is not read from the environment at all: a bad value there is moot.
  const variable = sources.env?.[envName(key)];
  if (variable !== undefined && variable !== "") return spec.parser.fromText(variable, envName(key));
  return undefined;
}

function subjectOf(key: string, spec: SettingSpec): string {
  return spec.subject ?? `option \`${key}\``;
}
