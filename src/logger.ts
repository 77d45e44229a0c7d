import pino from "pino";

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

let defaultLogger: Logger | undefined;

/** ormq's default logger: pino at `ORMQ_LOG_LEVEL` (default `info`), named `ormq`. */
export function getDefaultLogger(): Logger {
  defaultLogger ??= pino({ name: "ormq", level: process.env.ORMQ_LOG_LEVEL ?? "info" });
  return defaultLogger;
}
