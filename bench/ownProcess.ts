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
import { join } from "node:path";
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
