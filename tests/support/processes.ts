import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { trackChild } from "./leaks";

/** spawn, with the child registered for the leak check (see leaks.ts). */
const spawnTracked = ((...args: Parameters<typeof spawn>) => trackChild(spawn(...args))) as typeof spawn;

/** The compiled worker script (child processes need decorator metadata: compiled JavaScript). */
export const WORKER_SCRIPT = join(__dirname, "..", "..", "dist", "tests", "fixtures", "worker-process.js");

export interface WorkerProcess {
  child: ChildProcess;
  /** Resolves when the process printed "ready". */
  ready: Promise<void>;
  /** What it wrote to stderr so far (its log at warn and above). */
  stderr: () => string;
  /** Resolves with the exit code and the last JSON line it printed (its summary). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; summary: unknown; stderr: string }>;
}

/** `prefix`: a command the worker runs under (`ip netns exec NAME` puts it on a simulated host). */
export function spawnWorker(env: Record<string, string>, prefix: string[] = []): WorkerProcess {
  if (!existsSync(WORKER_SCRIPT)) throw new Error(`${WORKER_SCRIPT} is missing: run \`npm run build\` first (npm test does)`);
  const [command, ...args] = [...prefix, process.execPath, WORKER_SCRIPT];
  const child = spawnTracked(command, args, {
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
  return { child, ready, exited, stderr: () => stderr };
}

/**
 * A worker process over every test type, thread and process tasks included (their bootstrap is
 * the test DataSource module), with a short lease and poll; it starts at once.
 */
export function spawnBootstrapWorker(url: string, extra: Record<string, string> = {}): WorkerProcess {
  const w = spawnWorker({
    ORMQ_DATABASE_URL: url,
    ORMQ_BOOTSTRAP: DATA_SOURCE_MODULE,
    ORMQ_LEASE_MS: "3000",
    ORMQ_HEARTBEAT_INTERVAL_MS: "200",
    ORMQ_POLL_INTERVAL_MS: "50",
    ...extra,
  });
  void w.ready.then(() => w.child.stdin!.write("go\n"));
  return w;
}

/** The compiled `ormq` binary and the user DataSource module it loads in the tests. */
export const CLI = join(__dirname, "..", "..", "dist", "src", "cli", "main.js");
export const DATA_SOURCE_MODULE = join(__dirname, "..", "..", "dist", "tests", "fixtures", "data-source.js");

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the real `ormq` binary to completion. Its output is not a terminal, so tables are plain
 * and logs are JSON lines on stderr.
 */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
  const child = spawnTracked(process.execPath, [CLI, ...args], { env: { ...process.env, ORMQ_LOG_LEVEL: "info", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

/** Starts the `ormq` binary and leaves it running; `lines` collects its stderr log lines. */
export function startCli(args: string[], env: Record<string, string> = {}) {
  const child = spawnTracked(process.execPath, [CLI, ...args], { env: { ...process.env, ORMQ_LOG_LEVEL: "info", ...env }, stdio: ["ignore", "pipe", "pipe"] });
  const logs: Record<string, unknown>[] = [];
  let stdout = "";
  child.stdout!.on("data", (d) => (stdout += d));
  createInterface({ input: child.stderr! }).on("line", (line) => {
    try {
      logs.push(JSON.parse(line));
    } catch {
      logs.push({ msg: line });
    }
  });
  const exited = new Promise<{ code: number | null; stdout: string }>((resolve) => child.on("close", (code) => resolve({ code, stdout })));
  /** Complete lines printed on stdout so far. */
  const stdoutLines = () => stdout.split("\n").slice(0, -1);
  return { child, logs, exited, stdoutLines };
}
