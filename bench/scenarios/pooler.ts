/**
 * Behind PgBouncer in transaction mode: commit → run() latency for a worker whose DataSource goes
 * through the pooler (`pooler: "transaction"`) and listens on a direct connection (`listenUrl`),
 * enqueued from another DataSource through the pooler, next to the same without a pooler. Needs the
 * `pgbouncer` program (skipped, with a line saying so, when it is missing).
 */
import { execFileSync } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import type { DataSource } from "typeorm";
import { processForever } from "../../src";
import { startPgBouncer } from "../../tests/support/pgbouncer";
import { Databases, open, percentile, type Result } from "../common";
import { CommitClock, LatencyProbe, sampleLatency } from "./latency";

export function pgbouncerAvailable(): boolean {
  try {
    execFileSync("pgbouncer", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

export async function poolerLatency(databases: Databases, samples: number): Promise<Result[]> {
  const url = await databases.fresh("postgres");
  const direct = new URL(url);
  const bouncer = await startPgBouncer({ port: Number(direct.port) }, { database: direct.pathname.slice(1) });
  try {
    const results: Result[] = [];
    for (const through of ["direct", "pgbouncer"] as const) {
      const workerUrl = through === "direct" ? url : bouncer.url;
      const probe = { entities: [LatencyProbe], subscribers: [CommitClock] };
      const ds = await open(url, probe); // the schema, on the server itself
      const workerDs: DataSource = through === "direct" ? ds : await open(workerUrl, { ...probe, migrationsRun: false });
      const enqueuer = await open(workerUrl, { ...probe, migrationsRun: false });
      const controller = new AbortController();
      const worker = processForever(LatencyProbe, {
        dataSource: workerDs,
        signal: controller.signal,
        logger: pino({ level: "warn" }),
        ...(through === "pgbouncer" ? { pooler: "transaction" as const, listenUrl: url } : {}),
      });
      try {
        await sleep(300);
        const times = (await sampleLatency(enqueuer, samples))["commit → run() start"].sort((a, b) => a - b);
        results.push({
          scenario: "pooler",
          database: "postgres",
          variant:
            through === "direct"
              ? "commit → run() start, enqueued through another connection, no pooler"
              : "commit → run() start, enqueued through PgBouncer (transaction mode), worker behind it with listenUrl",
          tasks: samples,
          p50: percentile(times, 50),
          p95: percentile(times, 95),
          p99: percentile(times, 99),
          max: percentile(times, 100),
        });
      } finally {
        controller.abort();
        await worker;
        await enqueuer.destroy();
        if (workerDs !== ds) await workerDs.destroy();
        await ds.destroy();
      }
    }
    return results;
  } finally {
    await bouncer.stop();
  }
}
