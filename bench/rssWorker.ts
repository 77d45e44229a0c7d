/**
 * A worker process for the memory scenario: drains the tasks queued in the database given and
 * prints its peak RSS. Run by bench/scenarios/drain.ts.
 */
import pino from "pino";
import { processN } from "../src";
import { Noop, open } from "./common";

async function main() {
  const [url, count] = process.argv.slice(2);
  const ds = await open(url, { migrationsRun: false });
  const t0 = performance.now();
  await processN(Noop, Number(count), { dataSource: ds, logger: pino({ level: "warn" }) }); // the defaults
  const ms = performance.now() - t0;
  await ds.destroy();
  console.log(JSON.stringify({ maxRssKb: process.resourceUsage().maxRSS, ms }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
