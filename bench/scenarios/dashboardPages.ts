/**
 * The dashboard's pages over a big table: `count` tasks (a million with --full), a class with a
 * column of its own, 1% failed. Each page is fetched over HTTP from a running dashboard, seven
 * times; the median and the slowest are reported (p50, max in ms). Pages filtered on indexed
 * columns (none, status failed, an id) must answer in under 200 ms; the others read a bounded
 * range of ids per page and hand back a cursor.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { enqueueMany } from "../../src";
import { ormqDashboard } from "../../src/dashboard";
import { LimitedNoop, open, type Databases, type DatabaseName, type Result } from "../common";

const TOKEN = "bench-token-0123456789";

export async function dashboardPages(databases: Databases, database: DatabaseName, count: number): Promise<Result[]> {
  const ds = await open(await databases.fresh(database));
  const server = createServer(ormqDashboard({ dataSource: ds, auth: { token: TOKEN } }));
  try {
    for (let i = 0; i < count; i += 50_000) {
      await enqueueMany(Array.from({ length: Math.min(50_000, count - i) }, (_, j) => LimitedNoop.create({ benchKey: `k${(i + j) % 1000}` })), { dataSource: ds });
    }
    // 1% failed, spread through the table, finished a while ago.
    await ds.query(`UPDATE ormq_tasks SET status = 'failed', finished_at = created_at, attempts = 1 WHERE id % 100 = 7`);
    if (database === "postgres") await ds.query(`VACUUM ANALYZE ormq_tasks`);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const [{ id: someId }] = (await ds.query(`SELECT id FROM ormq_tasks WHERE id % 100 = 7 ORDER BY id LIMIT 1 OFFSET 1000`)) as { id: string }[];
    const pages: [string, string][] = [
      ["newest 50, no filter", "/tasks"],
      ["status failed (indexed)", "/tasks?status=failed"],
      ["one task by id", `/tasks/${someId}`],
      ["type (not indexed): a page of the id range", "/tasks?type=bench_noop_limited"],
      ["a class's own column (not indexed): a page of the id range", "/tasks?type=bench_noop_limited&f.benchKey=k7"],
      ["status failed and a class's column", "/tasks?status=failed&type=bench_noop_limited&f.benchKey=k7"],
      ["overview (counts by queue and status, chart)", "/"],
    ];
    const results: Result[] = [];
    for (const [variant, path] of pages) {
      const times: number[] = [];
      for (let i = 0; i < 7; i++) {
        const t0 = performance.now();
        const res = await fetch(base + path, { headers: { Authorization: `Bearer ${TOKEN}` } });
        await res.text();
        if (res.status !== 200) throw new Error(`dashboard bench: ${path} answered ${res.status}`);
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      results.push({ scenario: "dashboard", database, variant: `${variant}; ms per page, 7 fetches`, tasks: count, p50: round(times[3]), max: round(times[6]) });
    }
    return results;
  } finally {
    server.close();
    await ds.destroy();
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
