/**
 * Numbers and durations from text (CLI flags, environment variables), refused with an error that
 * names where the text came from.
 */
import ms from "ms";
import { InvalidOptionError } from "./errors";
import { MAX_DELAY_MS } from "./storable";

/**
 * Parses an integer flag or variable (`label` names it in the error), at least `min` and at most
 * `max` when given.
 */
export function parseInteger(raw: string, label: string, min?: number, max?: number): number {
  const text = raw.trim();
  const value = /^-?\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || (min !== undefined && value < min) || (max !== undefined && value > max)) {
    const range =
      min !== undefined && max !== undefined
        ? `an integer from ${min} to ${max}`
        : min !== undefined
          ? `an integer of ${min} or more`
          : max !== undefined
            ? `an integer of ${max} or less`
            : "an integer";
    throw new InvalidOptionError(`${label} must be ${range}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/**
 * Parses a duration (`7d`, `30s`, or milliseconds), at most `max` ms. For the CLI the default is
 * MAX_DELAY_MS (100 years), the longest delay ormq stores, so that "now minus it" or "now plus it"
 * is always a valid Date; worker settings are read up to 2^53 - 1 here and bounded by the options.
 */
export function parseDuration(raw: string, label: string, max: number = MAX_DELAY_MS): number {
  const text = raw.trim();
  // A bare number is milliseconds, as the name says; "30s", "5m" and "1h" are accepted too.
  // (ms() throws on an empty string: refused below with the same message as any bad value.)
  const value = /^\d+$/.test(text) ? Number(text) : text === "" ? undefined : ms(text as ms.StringValue);
  if (value === undefined || !(Number.isInteger(value) || value === Infinity) || value < 0) {
    throw new InvalidOptionError(`${label} must be milliseconds or a duration such as 30s, got ${JSON.stringify(raw)}`);
  }
  // Also refuses what is beyond 2^53 ("1000000y", 400 digits: Infinity): no Date or timer holds it.
  if (value > max) {
    throw new InvalidOptionError(`${label} must be at most ${max} ms (${ms(max, { long: true })}), got ${JSON.stringify(raw)}`);
  }
  return value;
}
