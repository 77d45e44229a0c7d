/** The web dashboard: `ormqDashboard({ dataSource, auth })`, a request handler (see app.ts). */
export { ormqDashboard, REFRESH_MS, type DashboardOptions } from "./app";
export type { DashboardAuth } from "./auth";
