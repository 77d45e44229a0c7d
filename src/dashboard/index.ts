/** The web dashboard: `ormqDashboard({ dataSource, auth })`, a request handler (see app.ts). */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { DashboardOptions } from "./app";

export type { DashboardOptions } from "./app";
export type { DashboardAuth } from "./auth";

/**
 * Makes the dashboard's request handler. Its module (and hono) loads here, on first use: every
 * worker and command imports ormq, and loading hono at import cost each of them 67 ms.
 */
export function ormqDashboard(options: DashboardOptions): (req: IncomingMessage, res: ServerResponse) => void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { ormqDashboard: make } = require("./app") as typeof import("./app");
  return make(options);
}
