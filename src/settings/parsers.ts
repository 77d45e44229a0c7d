/**
 * The kinds of value a setting holds, each with its bounds: how it is read from text (a flag or an
 * environment variable), how any value is checked (from code, from text, or a computed default),
 * and how help and the docs show it. A setting names its kind once, in its table; nothing else
 * parses or checks it.
 */
import ms from "ms";
import { InvalidOptionError } from "../errors";
import { parseDuration, parseInteger } from "../parse";

/** One kind of setting value. */
export interface Parser<T> {
  /**
   * Text → a value, or an InvalidOptionError naming `label` (`--lease-ms`, `ORMQ_LEASE_MS`) when
   * the text cannot be one. The range is left to `check`, which every value goes through.
   */
  fromText(raw: string, label: string): T;
  /** Any value → the value, or an InvalidOptionError naming `subject` (option `leaseMs`). */
  check(value: unknown, subject: string): T;
  /** How `--help` shows the flag's value: `<n>`, `<ms|duration>`. */
  readonly placeholder: string;
  /** The values accepted, for the docs: `1 to 100000`. */
  readonly values: string;
  /** A value as the docs and `--help` show it (30000 → `30s`). */
  show(value: T): string;
}

/** An integer from `min` to `max`; `why` explains the bound in the refusal. */
export function integer(bounds: { min: number; max: number; why?: string }): Parser<number> {
  const { min, max, why } = bounds;
  return {
    // The text's own refusal states only the lower bound: its wording predates this table and
    // tests and scripts match it ("ORMQ_CONCURRENCY must be an integer of 1 or more").
    fromText: (raw, label) => parseInteger(raw, label, min),
    check: (value, subject) => checkInteger(value, subject, min, max, why),
    placeholder: "<n>",
    values: `${min} to ${max}`,
    show: String,
  };
}

/**
 * A duration in ms that a node timer can wait for: text takes `30s`, `5m`, `1h` or ms. `max` is
 * at most 2^31 - 1 (the largest timer), and `why` says so in the refusal.
 */
export function duration(bounds: { min: number; max: number; why: string }): Parser<number> {
  const { min, max, why } = bounds;
  return {
    // Read up to 2^53 - 1 so that an over-long text is refused by `check`, with the timer's reason.
    fromText: (raw, label) => parseDuration(raw, label, Number.MAX_SAFE_INTEGER),
    check: (value, subject) => checkInteger(value, subject, min, max, why),
    placeholder: "<ms|duration>",
    values: `${min === 0 ? "0" : showMs(min)} to ${showMs(max)}`,
    show: showMs,
  };
}

/** `"auto"`, or an integer from 0 to `max`. */
export function autoOrCount(max: number): Parser<number | "auto"> {
  return {
    fromText(raw, label) {
      const text = raw.trim();
      if (text.toLowerCase() === "auto") return "auto";
      if (!/^\d+$/.test(text)) throw new InvalidOptionError(`${label} must be "auto" or an integer of 0 or more, got ${JSON.stringify(raw)}`);
      return parseInteger(raw, label, 0);
    },
    check: (value, subject) => (value === "auto" ? "auto" : checkInteger(value, subject, 0, max, 'or "auto"')),
    placeholder: "<n|auto>",
    values: `\`auto\`, or 0 to ${max}`,
    show: String,
  };
}

/** A non-empty list of names; text gives them comma-separated. `noun` says what they name. */
export function nameList(noun: string): Parser<string[]> {
  return {
    fromText(raw, label) {
      const items = raw.trim().split(",").map((s) => s.trim());
      if (items.some((s) => s === "")) throw new InvalidOptionError(`${label} has an empty name in ${JSON.stringify(raw)}`);
      return items;
    },
    check(value, subject) {
      if (!Array.isArray(value) || value.length === 0) throw new InvalidOptionError(`${subject} must be a non-empty array of ${noun}`);
      for (const item of value) {
        if (typeof item !== "string" || item.trim() === "") throw new InvalidOptionError(`${subject} has an empty or non-string name: ${show(item)}`);
      }
      return value as string[];
    },
    placeholder: "<names>",
    values: `${noun}, comma-separated`,
    show: (names) => names.join(","),
  };
}

/** One of `choices`. */
export function oneOf<const C extends string>(choices: readonly C[]): Parser<C> {
  const expected = choices.length === 2 ? `"${choices[0]}" or "${choices[1]}"` : `one of ${choices.join(", ")}`;
  return {
    fromText: (raw) => raw.trim() as C,
    check(value, subject) {
      if (typeof value === "string" && (choices as readonly string[]).includes(value)) return value as C;
      throw new InvalidOptionError(`${subject} must be ${expected}, got ${show(value)}`);
    },
    placeholder: choices.length === 2 ? `<${choices.join("|")}>` : "<value>",
    values: choices.map((c) => `\`${c}\``).join(", "),
    show: String,
  };
}

/** On or off: text takes on/off, true/false, 1/0, yes/no. */
export function onOff(): Parser<boolean> {
  return {
    fromText(raw, label) {
      const word = raw.trim().toLowerCase();
      if (["on", "true", "1", "yes"].includes(word)) return true;
      if (["off", "false", "0", "no"].includes(word)) return false;
      throw new InvalidOptionError(`${label} must be on or off, got ${JSON.stringify(raw)}`);
    },
    check(value, subject) {
      if (typeof value === "boolean") return value;
      throw new InvalidOptionError(`${subject} must be true or false, got ${show(value)}`);
    },
    placeholder: "<on|off>",
    values: "`on`, `off`",
    show: (on) => (on ? "on" : "off"),
  };
}

/** A module path or any other free text (checked where it is used). */
export function text(what: string): Parser<string> {
  return {
    fromText: (raw) => raw.trim(),
    check(value, subject) {
      if (typeof value === "string") return value;
      throw new InvalidOptionError(`${subject} must be ${what}, got ${show(value)}`);
    },
    placeholder: "<value>",
    values: what,
    show: String,
  };
}

/** A postgres:// connection URL. */
export function postgresUrl(): Parser<string> {
  return {
    fromText: (raw) => raw.trim(),
    check(value, subject) {
      let url: URL | undefined;
      try {
        url = typeof value === "string" ? new URL(value) : undefined;
      } catch {
        url = undefined;
      }
      // The value may hold a password: say what is wrong without repeating it.
      if (!url || (url.protocol !== "postgres:" && url.protocol !== "postgresql:")) throw new InvalidOptionError(`${subject} must be a postgres:// connection URL`);
      return value as string;
    },
    placeholder: "<url>",
    values: "a postgres:// URL",
    show: () => "(hidden)",
  };
}

function checkInteger(value: unknown, subject: string, min: number, max: number, why?: string): number {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
    throw new InvalidOptionError(`${subject} must be an integer from ${min} to ${max}${why ? ` ${why}` : ""}, got ${show(value)}`);
  }
  return value as number;
}

/** 30000 → `30s`, 1500 → `1500ms` (ms() would round it), the largest timer → `24.8 days`. */
function showMs(value: number): string {
  if (value >= 86_400_000 && value % 86_400_000 !== 0) return `${Math.floor(value / 8_640_000) / 10} days`;
  return value % 1000 === 0 ? ms(value) : `${value}ms`;
}

/** A value as an error message shows it (JSON.stringify drops NaN, Infinity and bigints). */
export function show(value: unknown): string {
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return typeof value;
  }
}
