import { execFileSync, spawn } from "node:child_process";
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "./pgServer";
import { trackChild } from "./leaks";

/**
 * A real PgBouncer (the system's `pgbouncer`) in transaction mode in front of a PostgreSQL. It
 * refuses to run as root: as root it runs as the `postgres` user. Its files live in a temporary
 * directory that stop() removes.
 */
export async function startPgBouncer(upstream: { port: number }, settings: { poolSize?: number; database?: string } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "ormq-pgbouncer-"));
  const port = await freePort();
  const ini = join(dir, "pgbouncer.ini");
  writeFileSync(
    ini,
    [
      "[databases]",
      `ormq = host=127.0.0.1 port=${upstream.port} dbname=${settings.database ?? "postgres"} user=postgres password=postgres`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      // Any client name is let in and connects upstream as the user above.
      "auth_type = any",
      "pool_mode = transaction",
      `default_pool_size = ${settings.poolSize ?? 4}`,
      "max_client_conn = 500",
      // A server connection goes back to the pool as the last transaction left it: nothing resets
      // a session setting a client made (which is what a leak would show).
      "server_reset_query =",
      "ignore_startup_parameters = extra_float_digits,options",
      `logfile = ${join(dir, "pgbouncer.log")}`,
      `pidfile = ${join(dir, "pgbouncer.pid")}`,
      "",
    ].join("\n"),
  );
  const asRoot = process.getuid?.() === 0;
  const uid = asRoot ? Number(execFileSync("id", ["-u", "postgres"]).toString()) : undefined;
  const gid = asRoot ? Number(execFileSync("id", ["-g", "postgres"]).toString()) : undefined;
  if (asRoot) {
    chownSync(dir, uid!, gid!);
    chownSync(ini, uid!, gid!);
  }
  const child = trackChild(spawn("pgbouncer", [ini], { uid, gid, stdio: ["ignore", "ignore", "pipe"] }));
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const failed = new Promise<never>((_, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`pgbouncer exited with ${code}: ${stderr}${log(dir)}`)));
  });
  failed.catch(() => {});
  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (Date.now() > deadline) throw new Error(`pgbouncer did not listen on ${port}: ${stderr}${log(dir)}`);
    await Promise.race([sleep(50), failed]);
  }
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/ormq`,
    async stop(): Promise<void> {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function log(dir: string): string {
  try {
    return readFileSync(join(dir, "pgbouncer.log"), "utf8");
  } catch {
    return "";
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

/** Whether the system tests run here (see the README): PgBouncer, network namespaces. */
export const SYSTEM_TESTS = process.env.ORMQ_SYSTEM_TESTS === "1";
