/**
 * The head-to-head drains each run in a new Node process, as a user's program runs: it starts,
 * opens its DataSource, enqueues, and drains. In the bench's own process a drain would inherit
 * what earlier scenarios left: their heap, code compiled for other work, and, after any SQLite
 * scenario, the promise hooks that SQLite's connection guard turns on for the whole process on
 * Node 20 (an AsyncLocalStorage; see docs/how-it-works.md). A PostgreSQL program never has those:
 * with them on, ormq's drain against graphile-worker's read 0.97x–1.08x where the same drains in
 * a process without them read 1.18x–1.40x (five alternating rounds each, bench/FINDINGS.md).
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { DatabaseName, Databases, Result } from "./common";
import type { DrainSettings } from "./scenarios/drain";

/** Which queue a side drains with. */
export type Side =
  | { queue: "ormq"; database: DatabaseName; settings: DrainSettings }
  | { queue: "graphile-worker"; batching: "batched" | "matched" | null }
  | { queue: "plainjob" };

/** What sideProcess.ts is started with. */
export interface SideSpec {
  side: Side;
  tasks: number;
  dir: string;
  pgUrl: string;
  mariadbUrl: string;
}

/** Runs one side's drain of `tasks` in a child process; resolves with its result. */
export async function inOwnProcess(dbs: Databases, tasks: number, side: Side): Promise<Result> {
  // The databases the bench's process made are dropped first, as a fresh one would drop them.
  await dbs.dropAll();
  await untilQuiet();
  const spec: SideSpec = { side, tasks, dir: dbs.dir, pgUrl: dbs.pgUrl, mariadbUrl: dbs.mariadbUrl };
  const out = await new Promise<string>((resolve, reject) => {
    // No node flag: a user's program is started plainly.
    const child = spawn(process.execPath, [join(__dirname, "sideProcess.js"), JSON.stringify(spec)], { stdio: ["ignore", "pipe", "inherit"] });
    let text = "";
    child.stdout.on("data", (d: Buffer) => (text += String(d)));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve(text) : reject(new Error(`a head-to-head drain (${JSON.stringify(side)}) exited with ${code}`))));
  });
  const last = out.trim().split("\n").pop() ?? "";
  return JSON.parse(last) as Result;
}

/** The whole machine's busy and total CPU time so far, in ticks (the first line of /proc/stat). */
function machineTicks(): { busy: number; total: number } | null {
  try {
    const ticks = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    const total = ticks.reduce((a, b) => a + b, 0);
    return { busy: total - ticks[3] - (ticks[4] ?? 0), total }; // idle and iowait are not busy
  } catch {
    return null; // not Linux: no wait
  }
}

/**
 * Waits until the machine is quiet (under 10% busy over half a second; at most 30 s, or
 * ORMQ_BENCH_QUIET_MS: the smoke test, run beside the other suites, sets 0) before a
 * drain starts. Without it a drain could start while a database server still wrote back what the
 * scenario before had written (the head-to-head follows the MariaDB scenarios): in the run of
 * 2026-12-08 02:17Z every side's three rounds rose from first to last (ormq at its defaults 22,957,
 * 26,444, 28,127), and with eight sides in a round, the side that came first paid most. A user's
 * drain does not start amid another benchmark's background writes.
 */
async function untilQuiet(maxMs = Number(process.env.ORMQ_BENCH_QUIET_MS ?? 30_000)): Promise<void> {
  const started = performance.now();
  let before = machineTicks();
  while (before && performance.now() - started < maxMs) {
    await sleep(500);
    const now = machineTicks();
    if (!now) return;
    if ((now.busy - before.busy) / Math.max(1, now.total - before.total) < 0.1) return;
    before = now;
  }
}
