/**
 * One head-to-head drain in a process of its own (see ownProcess.ts): started with one argument,
 * the side as JSON, it opens a fresh database, fills the queue, drains it, drops the database and
 * prints the result as its last line.
 */
import "reflect-metadata";
import { Databases } from "./common";
import type { SideSpec } from "./ownProcess";
import { drain } from "./scenarios/drain";
import { graphileWorker, plainjob } from "./scenarios/others";

async function main() {
  const spec = JSON.parse(process.argv[2]) as SideSpec;
  const dbs = new Databases(spec.dir, spec.pgUrl, spec.mariadbUrl);
  try {
    const side = spec.side;
    const result =
      side.queue === "ormq"
        ? await drain(dbs, side.database, spec.tasks, side.settings, "head-to-head")
        : side.queue === "graphile-worker"
          ? await graphileWorker(dbs, spec.tasks, side.batching)
          : await plainjob(dbs, spec.tasks);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await dbs.dropAll();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
