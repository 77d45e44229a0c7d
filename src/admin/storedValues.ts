/**
 * Reading stored values without trusting them, for the admin views (list, show, stats): a row can
 * hold anything ormq, a user or another program wrote (a REAL 1e19 in SQLite's `run_at`, text that
 * is not JSON in `errors`), and a view of the queue must show such a row, never fail on it.
 */

/** The largest |epoch ms| a Date holds (±100,000,000 days around 1970). */
const MAX_DATE_MS = 8.64e15;

/**
 * An instant as the admin views return it: a `Date` when the stored epoch milliseconds make one;
 * otherwise the stored value itself, a number (out of a Date's range: 1e19) or, when it is not a
 * number at all (text in a SQLite column), the stored text.
 */
export type StoredInstant = Date | number | string;

/** A stored instant (epoch ms, a number or a bigint's decimal text) read tolerantly; null stays null. */
export function readInstant(raw: unknown): StoredInstant | null {
  if (raw === null || raw === undefined) return null;
  const ms = typeof raw === "number" ? raw : typeof raw === "bigint" || (typeof raw === "string" && raw.trim() !== "") ? Number(raw) : NaN;
  if (Number.isFinite(ms) && Math.abs(ms) <= MAX_DATE_MS) return new Date(ms);
  if (Number.isFinite(ms) || typeof raw === "number") return ms;
  return typeof raw === "string" ? raw : String(raw);
}

/**
 * A stored `simple-json` value, parsed; text that is not JSON is returned as it is (a string), so
 * a corrupt value shows exactly what is stored.
 */
export function readJson(raw: unknown): unknown {
  if (typeof raw !== "string") return raw;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** A stored text column: as is, a non-string (SQLite stores what it is given) as its text. */
export function readText(raw: unknown): string | null {
  if (raw === null || raw === undefined) return null;
  return typeof raw === "string" ? raw : typeof raw === "object" && !Buffer.isBuffer(raw) ? JSON.stringify(raw) : String(raw);
}

/** How long ago `oldest` (stored epoch ms) was, by the database clock `now`; null when unknown. */
export function ageMs(now: number, oldest: unknown): number | null {
  if (oldest === null || oldest === undefined) return null;
  const age = now - Number(oldest);
  return Number.isFinite(age) ? Math.max(0, age) : null;
}
