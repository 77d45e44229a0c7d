/**
 * What ormq writes must be storable on both databases and bounded in size: a value the database
 * refuses for its content (PostgreSQL rejects U+0000 in text and lone UTF-16 surrogates in jsonb)
 * would make an outcome unwritable, and an unbounded one bloats every read of the row. Pure
 * functions, no database: the worker, the rescue and the admin functions share them.
 */

/** An error record's message is cut to this many characters. */
export const MAX_MESSAGE_CHARS = 4_096;
/** An error record's stack (and a task's `last_error`) is cut to this many characters. */
export const MAX_STACK_CHARS = 8_192;
/** Other short texts ormq records (an error's name, a hook's name, a worker id): this many characters. */
export const MAX_NAME_CHARS = 200;
/** How many of a task's most recent errors its `errors` list keeps (and at most MAX_ERRORS_BYTES of them). */
export const ERRORS_KEPT = 20;
/** A task's `errors` list, as JSON, stays under this many UTF-8 bytes (oldest records go first). */
export const MAX_ERRORS_BYTES = 64 * 1024;
/** A result whose JSON is larger than this (UTF-8 bytes) fails its attempt instead of being stored. */
export const MAX_RESULT_BYTES = 1024 * 1024;
/**
 * The longest delay ormq stores (SnoozeTask, delay(), a retry policy's date): 100 years. Due times
 * are epoch milliseconds in a bigint column and read back as a Date; this keeps both far inside range.
 */
export const MAX_DELAY_MS = 100 * 365 * 24 * 3_600_000;
/** The longest a node timer can wait; a longer one fires at once (node clamps it to 1 ms). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Replaced characters: NUL (PostgreSQL's text refuses it) and lone surrogates (jsonb refuses them). */
const REPLACEMENT = "\uFFFD";

/**
 * `value` as text that both databases store as given: NUL and lone surrogates become U+FFFD,
 * well-formed text is unchanged. Anything not a string is turned into one without throwing.
 * Longer than `maxChars`, it is cut (never inside a surrogate pair) and says how much was cut.
 */
export function storableText(value: unknown, maxChars: number = MAX_MESSAGE_CHARS): string {
  let text = typeof value === "string" ? value : describe(value);
  if (text.length > maxChars) {
    let end = maxChars;
    // Do not split a surrogate pair: the half left behind would be replaced below.
    if (isHighSurrogate(text.charCodeAt(end - 1))) end--;
    text = `${text.slice(0, end)}… [${text.length - end} more characters cut]`;
  }
  // String.prototype.toWellFormed (node 20) replaces lone surrogates with U+FFFD; ES2022's lib lacks its type.
  // eslint-disable-next-line no-control-regex -- NUL is the character to replace
  return (text as unknown as { toWellFormed(): string }).toWellFormed().replace(/\u0000/g, REPLACEMENT);
}

/** Text for a value that is not a string, for an error record: never throws. */
function describe(value: unknown): string {
  if (value === undefined || value === null) return "";
  try {
    return String(value);
  } catch {
    try {
      return Object.prototype.toString.call(value);
    } catch {
      return "[unprintable]";
    }
  }
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/** UTF-8 size of a text, as the database stores it. */
export function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

/**
 * A list of records as JSON text of at most `maxBytes`: the oldest records are dropped first.
 * The newest one is always kept (its fields are bounded, so it fits).
 */
export function boundedJsonList(records: readonly unknown[], maxBytes: number = MAX_ERRORS_BYTES): string {
  let kept = records;
  let text = JSON.stringify(kept);
  while (kept.length > 1 && utf8Bytes(text) > maxBytes) {
    // Drop enough at once that a long list does not take one JSON.stringify per record.
    const excess = utf8Bytes(text) - maxBytes;
    const average = utf8Bytes(text) / kept.length;
    kept = kept.slice(Math.min(kept.length - 1, Math.max(1, Math.ceil(excess / average))));
    text = JSON.stringify(kept);
  }
  return text;
}
