/**
 * A real MariaDB for the tests (Debian's `mariadb-server`): a server of its own in a temporary
 * directory, on a free port, unprivileged (the `mysql` user when the tests run as root), started
 * by the test file that needs it and removed at its end. Under ORMQ_SYSTEM_TESTS, as .ci/run sets
 * (it installs the package when it is missing), a missing binary is a failure, not a skip.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export interface MariaDbServer {
  /** `mariadb://root@127.0.0.1:<port>/` (no database: create one per test file). */
  url: string;
  /** Stops the server for good and removes its files. */
  stop(): Promise<void>;
  /** Stops the server process alone (SIGKILL: a crash), keeping its files for `start`. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again on the same port and files. */
  start(): Promise<void>;
}

/** The server binaries, or null when `mariadb-server` is not installed. */
export function mariadbBinaries(): { server: string; install: string } | null {
  const find = (name: string) => spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).stdout.trim() || null;
  const server = find("mariadbd") ?? (spawnSync("test", ["-x", "/usr/sbin/mariadbd"]).status === 0 ? "/usr/sbin/mariadbd" : null);
  const install = find("mariadb-install-db");
  return server && install ? { server, install } : null;
}

/**
 * `durable`: InnoDB flushes its log at every commit (the server's default, what the benchmark
 * measures); the tests' server writes it at commit and flushes once a second.
 */
export async function startMariaDb(options: { durable?: boolean } = {}): Promise<MariaDbServer> {
  const binaries = mariadbBinaries();
  if (!binaries) throw new Error("mariadb-server is not installed (apt-get install mariadb-server; .ci/run installs it)");
  const dir = mkdtempSync(join(tmpdir(), "ormq-mariadb-"));
  // mariadbd refuses to run as root: as root, the package's own unprivileged user owns the files.
  const user = userInfo().uid === 0 ? "mysql" : userInfo().username;
  const own = (path: string) => {
    if (userInfo().uid !== 0) return;
    chownSync(path, Number(spawnSync("id", ["-u", user], { encoding: "utf8" }).stdout.trim()), Number(spawnSync("id", ["-g", user], { encoding: "utf8" }).stdout.trim()));
  };
  own(dir);
  const data = join(dir, "data");
  // A temporary directory of its own: a server starting up removes the `#sql*` temporary files it
  // finds in its tmpdir, so servers sharing /tmp (the suites run several at once) deleted each
  // other's, and a query of information_schema failed ("Error on delete of '/tmp/#sql-temptable…'").
  const temp = join(dir, "tmp");
  mkdirSync(temp);
  own(temp);
  const installed = spawnSync(binaries.install, ["--no-defaults", `--datadir=${data}`, `--user=${user}`, "--auth-root-authentication-method=normal", "--skip-test-db"], {
    encoding: "utf8",
  });
  if (installed.status !== 0) throw new Error(`mariadb-install-db failed: ${installed.stderr || installed.stdout}`);
  const port = await freePort();
  const log = join(dir, "error.log");
  const args = [
      "--no-defaults",
      `--datadir=${data}`,
      `--tmpdir=${temp}`,
      `--socket=${join(dir, "mysqld.sock")}`,
      `--port=${port}`,
      "--bind-address=127.0.0.1",
      `--user=${user}`,
      // A throwaway server: no grants to manage, no durability to pay for (unless asked).
      "--skip-grant-tables",
      "--skip-name-resolve",
      `--innodb-flush-log-at-trx-commit=${options.durable ? 1 : 2}`,
      "--innodb-buffer-pool-size=128M",
      "--max-connections=500",
      // What ormq's tables are created with (and what an application's database should use).
      "--character-set-server=utf8mb4",
      "--collation-server=utf8mb4_unicode_ci",
      `--log-error=${log}`,
  ];
  let server: ChildProcess;
  let exited = true;
  const launch = async () => {
    server = spawn(binaries.server, args, { stdio: "ignore" });
    exited = false;
    server.once("exit", () => (exited = true));
    // Ready when it accepts a connection (the log says so too, but the socket is what a test needs).
    for (let waited = 0; ; waited += 100) {
      if (exited) throw new Error(`mariadbd exited at start: ${safeRead(log)}`);
      if (await accepts(port)) break;
      if (waited > 30_000) {
        server.kill("SIGKILL");
        throw new Error(`mariadbd did not accept connections within 30 s: ${safeRead(log)}`);
      }
      await sleep(100);
    }
  };
  const halt = async (signal: NodeJS.Signals) => {
    if (exited) return;
    const gone = new Promise((resolve) => server.once("exit", resolve));
    server.kill(signal);
    await Promise.race([gone, sleep(10_000, undefined, { ref: false })]);
    if (!exited) {
      server.kill("SIGKILL");
      await gone;
    }
  };
  await launch();
  return {
    url: `mariadb://root@127.0.0.1:${port}/`,
    stop: async () => {
      await halt("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
    kill: (signal = "SIGKILL") => halt(signal),
    start: launch,
  };
}

function safeRead(file: string): string {
  try {
    return readFileSync(file, "utf8").slice(-2_000);
  } catch {
    return "(no log)";
  }
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** A TCP port nothing listens on now (the test servers' ports). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
