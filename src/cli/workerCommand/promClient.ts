/**
 * prom-client, for `ormq process --metrics-port` only: it is an optional peer dependency of ormq,
 * loaded when metrics are asked for, so a worker without them needs nothing of it installed.
 */
import { OrmqConfigurationError } from "../../errors";

type PromClient = typeof import("prom-client");
type Metrics = typeof import("../../metrics");

/** prom-client and ormq's metrics module; a clear error naming the package when it is missing. */
export function loadMetrics(): { prom: PromClient; createMetrics: Metrics["createMetrics"] } {
  let prom: PromClient;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    prom = require("prom-client") as PromClient;
  } catch (err) {
    if ((err as { code?: unknown }).code !== "MODULE_NOT_FOUND") throw err;
    throw new OrmqConfigurationError("--metrics-port needs the prom-client package (an optional peer dependency of ormq): npm install prom-client", { cause: err });
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createMetrics } = require("../../metrics") as Metrics;
  return { prom, createMetrics };
}
