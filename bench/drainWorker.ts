/**
 * A worker process for the scaling scenario: waits for "go" on stdin, drains the queue at the
 * defaults until nothing is ready, and prints its summary and CPU time as one JSON line.
 */
import pino from "pino";
import { processN } from "../src";
import { Noop, open } from "./common";

async function main() {
  const [url] = process.argv.slice(2);
  const ds = await open(url, { migrationsRun: false });
  process.stdout.write("ready\n");
  await new Promise<void>((resolve) => process.stdin.once("data", () => resolve()));
  process.stdin.pause();
  const cpu0 = process.cpuUsage();
  const summary = await processN(Noop, Number.MAX_SAFE_INTEGER, { dataSource: ds, logger: pino({ level: "warn" }) });
  const cpu = process.cpuUsage(cpu0);
  await ds.destroy();
  console.log(JSON.stringify({ succeeded: summary.succeeded, cpuMs: (cpu.user + cpu.system) / 1000 }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
