import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

/** The compiled worker script (child processes need decorator metadata: compiled JavaScript). */
export const WORKER_SCRIPT = join(__dirname, "..", "..", "dist", "tests", "fixtures", "worker-process.js");

export interface WorkerProcess {
  child: ChildProcess;
  /** Resolves when the process printed "ready". */
  ready: Promise<void>;
  /** Resolves with the exit code and the last JSON line it printed (its summary). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; summary: unknown; stderr: string }>;
}

export function spawnWorker(env: Record<string, string>): WorkerProcess {
  if (!existsSync(WORKER_SCRIPT)) throw new Error(`${WORKER_SCRIPT} is missing: run \`npm run build\` first (npm test does)`);
  const child = spawn(process.execPath, [WORKER_SCRIPT], {
    env: { ...process.env, ORMQ_TEST_WAIT_GO: "1", ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  let summary: unknown;
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  createInterface({ input: child.stdout! }).on("line", (line) => {
    if (line === "ready") markReady();
    else if (line.startsWith("{")) summary = JSON.parse(line);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; summary: unknown; stderr: string }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal, summary, stderr })),
  );
  return { child, ready, exited };
}
