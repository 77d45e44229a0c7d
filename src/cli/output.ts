/**
 * How commands print: a table for people (or `key: value` lines for one record), or JSON with
 * `--json` for scripts. Dates print as ISO strings either way.
 *
 * Task data is written by tasks and users, and so is not trusted: a task's error could hold an
 * escape sequence that retitles the terminal or clears the screen. Table and record output escapes
 * every control character (`\x1b`, `\u009b`, `\n`) in every cell; JSON output stays exact (a
 * parser gets back the stored text) but escapes the same characters as `\u` sequences.
 */
import Table from "cli-table3";

export function printJson(value: unknown): void {
  process.stdout.write(escapeJsonText(JSON.stringify(value, jsonValue, 2)) + "\n");
}

/** Prints `value` as JSON on one line (one document per line, for `--watch`). */
export function printJsonLine(value: unknown): void {
  process.stdout.write(escapeJsonText(JSON.stringify(value, jsonValue)) + "\n");
}

function jsonValue(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

/** Prints rows as a table with the given columns (key → heading). */
export function printTable(rows: Record<string, unknown>[], columns: Record<string, string>): void {
  if (rows.length === 0) {
    process.stdout.write("(none)\n");
    return;
  }
  const table = new Table({ head: Object.values(columns), style: process.stdout.isTTY ? { head: ["cyan"] } : { head: [], border: [] } });
  for (const row of rows) table.push(Object.keys(columns).map((k) => cell(row[k])));
  process.stdout.write(table.toString() + "\n");
}

/** Prints one record as aligned `key  value` lines. */
export function printRecord(record: Record<string, unknown>): void {
  const keys = Object.keys(record).map(escapeControl);
  const width = Math.max(...keys.map((k) => k.length));
  Object.values(record).forEach((value, i) => process.stdout.write(`${keys[i].padEnd(width)}  ${cell(value)}\n`));
}

/** One value as one line of safe text. Never throws, whatever was stored. */
export function cell(value: unknown): string {
  return escapeControl(cellText(value));
}

function cellText(value: unknown): string {
  if (value === null || value === undefined) return "";
  // An out-of-range instant is kept as a number by the admin reads; an Invalid Date made any other way prints as such.
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? "Invalid Date" : value.toISOString();
  try {
    if (typeof value === "object") return JSON.stringify(value, jsonValue) ?? String(value);
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/**
 * Characters that a terminal acts on or that change how the text around them reads: C0 controls
 * (newline and tab included), DEL, C1 controls (0x9b is a one-byte CSI), lone UTF-16 surrogates,
 * the line and paragraph separators, and the bidirectional overrides and isolates (which can make
 * text display in an order other than the stored one).
 */
// eslint-disable-next-line no-control-regex -- matching control characters is what this is for
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/**
 * `text` with every unsafe character written as an escape: `\n`, `\r`, `\t`, `\x1b` below 0x80,
 * `\u009b` above. Backslashes are left as they are (stacks and Windows paths stay readable), so
 * the escaped form is for reading, not for parsing back: `--json` is for that.
 */
export function escapeControl(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return NAMED[c] ?? (code < 0x80 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`);
  });
}

/**
 * JSON text with the unsafe characters that JSON.stringify leaves raw (DEL, C1, U+2028/2029,
 * bidirectional controls) written as `\uXXXX`: the same JSON value, safe on a terminal. Outside
 * strings JSON has only ASCII punctuation and whitespace, so every match is inside a string.
 */
function escapeJsonText(json: string): string {
  return json.replace(UNSAFE, (c) => (c === "\n" ? c : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`));
}
