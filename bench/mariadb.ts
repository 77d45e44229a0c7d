import { mariadbBinaries, startMariaDb } from "../tests/support/mariadb";

/**
 * A MariaDB for the benchmarks: ORMQ_BENCH_MARIADB_URL when set (`mariadb://user:pass@host:port/`),
 * else a server of its own started here with durable settings (InnoDB flushes its log at every
 * commit, as a production server does); null when neither is at hand (no mariadb-server).
 */
export async function startBenchMariaDb(): Promise<{ url: string; stop: () => Promise<void> } | null> {
  if (process.env.ORMQ_BENCH_MARIADB_URL) return { url: process.env.ORMQ_BENCH_MARIADB_URL, stop: async () => {} };
  if (!mariadbBinaries()) return null;
  const server = await startMariaDb({ durable: true });
  return { url: server.url, stop: server.stop };
}
