import pino from "pino";
import pretty from "pino-pretty";

/**
 * The logger ormq writes to: pino's interface (`logger.info({ taskId }, "message")`), so an
 * application can pass its own pino logger, or anything with the same four methods and `child`.
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

/** The levels `logLevel` / `--log-level` / `ORMQ_LOG_LEVEL` accept. */
export const LOG_LEVELS: readonly string[] = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

let defaultLogger: Logger | undefined;

/**
 * A pino logger named `ormq` at `level`: human-readable lines when stdout is a terminal, one JSON
 * object per line otherwise (for log collectors). `ORMQ_LOG_FORMAT=json|pretty` overrides the guess.
 */
export function createLogger(level: string, options: { fd?: 1 | 2 } = {}): Logger {
  const fd = options.fd ?? 1;
  const format = process.env.ORMQ_LOG_FORMAT ?? ((fd === 1 ? process.stdout : process.stderr).isTTY ? "pretty" : "json");
  // pino-pretty as a synchronous stream rather than a transport: no extra thread, and nothing is
  // lost when a CLI command exits right after its last line.
  if (format === "pretty") return pino({ name: "ormq", level }, pretty({ colorize: true, sync: true, ignore: "pid,hostname", destination: fd }));
  return pino({ name: "ormq", level }, pino.destination({ fd, sync: true }));
}

/** ormq's default logger: `createLogger` at `ORMQ_LOG_LEVEL` (default `info`). */
export function getDefaultLogger(): Logger {
  defaultLogger ??= createLogger(process.env.ORMQ_LOG_LEVEL ?? "info");
  return defaultLogger;
}

/**
 * Whether a line at `level` would be written. pino (and loggers like it) can say; for any other
 * logger the answer is yes. Lets a hot path skip building what would be dropped.
 */
export function isLevelEnabled(logger: Logger, level: string): boolean {
  const check = (logger as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled;
  return typeof check === "function" ? check.call(logger, level) : true;
}
