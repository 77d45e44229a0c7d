/**
 * A dashboard left open during a drain: a dashboard server in its own process and DataSource (as
 * `ormq dashboard` runs), and three clients that each load its overview's live part every second
 * (a browser tab refreshes it every 5 s: this is heavier). Prints "ready" once serving; stops on
 * SIGTERM. Usage: node dashboardLoad.js <database url>
 */
import "reflect-metadata";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { ormqDashboard } from "../src/dashboard";
import { open } from "./common";

const TOKEN = "bench-token-0123456789";
const CLIENTS = 3;
const EVERY_MS = 1_000;

async function main(): Promise<void> {
  const ds = await open(process.argv[2], { migrationsRun: false });
  const server = createServer(ormqDashboard({ dataSource: ds, auth: { token: TOKEN } }));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/?partial=1`;
  const load = async () => {
    const res = await fetch(url, { headers: { Authorization: `Bearer ${TOKEN}` } });
    await res.text();
    if (res.status !== 200) throw new Error(`dashboard load: the overview answered ${res.status}`);
  };
  await load(); // the first read, before the drain starts
  const timers = Array.from({ length: CLIENTS }, (_, i) =>
    setTimeout(() => {
      timers[i] = setInterval(() => void load().catch((err: unknown) => console.error(err)), EVERY_MS);
    }, (i * EVERY_MS) / CLIENTS),
  );
  process.stdout.write("ready\n");
  process.once("SIGTERM", () => {
    for (const t of timers) clearInterval(t);
    server.closeAllConnections();
    server.close();
    void ds.destroy().finally(() => process.exit(0));
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
