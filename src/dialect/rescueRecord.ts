import { WorkerLostError } from "../errors";
import { boundedJsonList, ERRORS_KEPT, MAX_ERRORS_BYTES, MAX_NAME_CHARS, storableText } from "../storable";

/** A running task whose lease expired, as the rescue reads it. */
export interface ExpiredRow {
  id: string;
  attempts: number;
  lockedBy: string | null;
  /** The stored `errors` text: anything a row can hold (not JSON, not a list, too large). */
  errors: unknown;
}

/** What the rescue writes for one expired task. */
export interface RescueValues {
  lastError: string;
  /** The new `errors` list, as JSON text. */
  errors: string;
  /** The stored list could not be carried on (not a JSON list, or too large) and was replaced. */
  replaced: boolean;
}

/**
 * Stored `errors` larger than this are not parsed: replaced, like a corrupt list. ormq itself keeps
 * the list under MAX_ERRORS_BYTES; anything much larger was written some other way.
 */
const MAX_READ_CHARS = 4 * MAX_ERRORS_BYTES;

/**
 * The rescue's read of `errors` (the same SQL on both databases): a value too large to be worth
 * reading comes back as a JSON string, which is not a list, so it is replaced like a corrupt one.
 */
export const READ_ERRORS = `CASE WHEN errors IS NULL OR length(errors) <= ${MAX_READ_CHARS} THEN errors ELSE '"too large"' END`;

/**
 * The rescue's record of a lost worker, appended to the task's errors. Parsed here, not in SQL, so
 * that one row whose `errors` is not valid JSON cannot fail the statement that rescues every other
 * expired task: that row's list is replaced (and the rescue says so), the others are kept.
 */
export function rescueValues(row: ExpiredRow, now: number): RescueValues {
  const worker = storableText(row.lockedBy ?? "?", MAX_NAME_CHARS);
  const message = `worker ${worker} stopped renewing its lease`;
  const record = { attempt: row.attempts, at: now, name: WorkerLostError.name, message };
  const before = storedList(row.errors);
  const list = before === null ? [record] : [...before, record].slice(-ERRORS_KEPT);
  return { lastError: `${WorkerLostError.name}: ${message}`, errors: boundedJsonList(list), replaced: before === null && !isEmpty(row.errors) };
}

/** The stored list, or null when there is none or it cannot be read as one. */
function storedList(stored: unknown): unknown[] | null {
  if (typeof stored !== "string" || stored === "" || stored.length > MAX_READ_CHARS) return null;
  try {
    const parsed: unknown = JSON.parse(stored);
    return Array.isArray(parsed) ? parsed : null;
  } catch {
    return null;
  }
}

function isEmpty(stored: unknown): boolean {
  return stored === null || stored === undefined || stored === "";
}
