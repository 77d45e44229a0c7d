import type { FinalStatus } from "./dialect";

/**
 * Why a write failed, in the terms the completer acts on: `transient` (connection, resources,
 * concurrency, a busy SQLite: try again later), `content` (the database refuses these values: never
 * retry them as they are), or `other` (a statement that cannot run: retry a little, then give up).
 */
export type WriteFailureKind = "transient" | "content" | "other";

export interface WriteFailure {
  kind: WriteFailureKind;
  /** The dialect's name for the statement that failed, when it said. */
  statement?: string;
  /** Completions of the batch already on disk when a later statement of the same batch failed. */
  applied?: Map<string, FinalStatus>;
}

/**
 * SQLSTATE classes (PostgreSQL): 08 connection exception, 40 transaction rollback (serialization,
 * deadlock), 53 insufficient resources, 57 operator intervention (shutdown, cancel), 58 system
 * error (I/O) are transient; 22 data exception and 23 integrity constraint violation are content.
 */
const TRANSIENT_CLASSES = new Set(["08", "40", "53", "57", "58"]);
const CONTENT_CLASSES = new Set(["22", "23"]);
/** SQLite's primary result codes (extended codes start with them). */
const SQLITE_TRANSIENT = ["SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_FULL", "SQLITE_CANTOPEN", "SQLITE_NOMEM", "SQLITE_PROTOCOL"];
const SQLITE_CONTENT = ["SQLITE_CONSTRAINT", "SQLITE_TOOBIG", "SQLITE_MISMATCH", "SQLITE_RANGE"];
/** Socket errors: the connection to the server is gone or not there yet. */
const NETWORK_CODES = new Set(["PROTOCOL_CONNECTION_LOST", "ECONNRESET", "ECONNREFUSED", "ECONNABORTED", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);
/** node-postgres reports a lost or unobtainable connection without a code. */
const PG_CONNECTION_MESSAGES = /Connection terminated|connection timeout|timeout exceeded when trying to connect|connection error and is not queryable/i;

const tags = new WeakMap<object, { statement: string; applied?: Map<string, FinalStatus> }>();

/**
 * Notes which statement `err` came from and what of its batch was already written, for the
 * completer (the error itself is not changed). Returns `err`, to be rethrown.
 */
export function tagWriteError(err: unknown, statement: string, applied?: Map<string, FinalStatus>): unknown {
  if (typeof err === "object" && err !== null && !tags.has(err)) tags.set(err, { statement, applied: applied && applied.size > 0 ? applied : undefined });
  return err;
}

/** Classifies an error thrown by `Dialect.complete` (or any write of a dialect). */
export function writeFailureOf(err: unknown): WriteFailure {
  const tag = typeof err === "object" && err !== null ? tags.get(err) : undefined;
  return { kind: kindOf(err), statement: tag?.statement, applied: tag?.applied };
}

function kindOf(err: unknown): WriteFailureKind {
  const { code: ownCode, message, sqlState } = (typeof err === "object" && err !== null ? err : {}) as { code?: unknown; message?: unknown; sqlState?: unknown };
  // MySQL's errors carry the standard SQLSTATE beside their own code (ER_LOCK_DEADLOCK is 40001).
  const code = typeof sqlState === "string" && /^[0-9A-Z]{5}$/.test(sqlState) ? sqlState : ownCode;
  if (typeof code === "string") {
    if (/^[0-9A-Z]{5}$/.test(code)) {
      const cls = code.slice(0, 2);
      if (TRANSIENT_CLASSES.has(cls)) return "transient";
      if (CONTENT_CLASSES.has(cls)) return "content";
      return "other";
    }
    if (code.startsWith("SQLITE_")) {
      if (SQLITE_TRANSIENT.some((c) => code.startsWith(c))) return "transient";
      if (SQLITE_CONTENT.some((c) => code.startsWith(c))) return "content";
      return "other";
    }
    if (NETWORK_CODES.has(code)) return "transient";
  }
  if (typeof message === "string" && PG_CONNECTION_MESSAGES.test(message)) return "transient";
  return "other";
}
