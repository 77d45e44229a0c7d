/**
 * Scaling: one queue of no-op tasks drained by 1, 2, 4 and 8 worker processes at the defaults on
 * one PostgreSQL: the rate, and the CPU per task of the workers and of the server, to show where
 * one database stops scaling and why.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { cpuNow, Databases, fill, Noop, open, rate, type Result } from "../common";

export async function scaling(databases: Databases, tasks: number, processes: number): Promise<Result> {
  const url = await databases.fresh("postgres");
  const ds = await open(url);
  try {
    await fill(ds, Noop, tasks);
    await ds.query(`VACUUM ANALYZE ormq_tasks`);
  } finally {
    await ds.destroy();
  }
  const children = Array.from({ length: processes }, () => spawn(process.execPath, [join(__dirname, "..", "drainWorker.js"), url], { stdio: ["pipe", "pipe", "inherit"] }));
  const outputs = children.map((child) => {
    const lines = createInterface({ input: child.stdout! });
    let ready!: () => void;
    const isReady = new Promise<void>((resolve) => (ready = resolve));
    let last = "";
    lines.on("line", (line) => (line === "ready" ? ready() : (last = line)));
    const exited = new Promise<{ succeeded: number; cpuMs: number }>((resolve, reject) =>
      child.on("exit", (code) => (code === 0 ? resolve(JSON.parse(last)) : reject(new Error(`drain worker exited with ${code}`)))),
    );
    return { isReady, exited };
  });
  await Promise.all(outputs.map((o) => o.isReady));
  const cpu0 = cpuNow();
  const t0 = performance.now();
  for (const child of children) child.stdin!.write("go\n");
  const results = await Promise.all(outputs.map((o) => o.exited));
  const ms = performance.now() - t0;
  const cpu1 = cpuNow();
  const succeeded = results.reduce((sum, r) => sum + r.succeeded, 0);
  if (succeeded !== tasks) throw new Error(`scaling: ${succeeded} of ${tasks} tasks succeeded`);
  const workerMs = results.reduce((sum, r) => sum + r.cpuMs, 0);
  return {
    scenario: "scaling",
    database: "postgres",
    variant: `${processes} worker process${processes === 1 ? "" : "es"} at the defaults`,
    tasks,
    tasksPerSecond: rate(tasks, ms),
    workerCpuUs: Math.round((workerMs * 1000) / tasks),
    serverCpuUs: Math.round(((cpu1.serverMs - cpu0.serverMs) * 1000) / tasks),
  };
}
