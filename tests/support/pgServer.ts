import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { trackChild } from "./leaks";

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A PostgreSQL of its own in a child process (pg-server.mjs), with the server's default settings
 * (unlike the shared test server, fsync and synchronous_commit stay on), that can be stopped and
 * started.
 */
export async function restartablePostgres(network?: { listenAddresses: string; allowed: string }) {
  const port = await freePort();
  const args = [join(__dirname, "pg-server.mjs"), String(port), ...(network ? [network.listenAddresses, network.allowed] : [])];
  const child = trackChild(spawn(process.execPath, args, { stdio: ["pipe", "pipe", "inherit"] }));
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const expectLine = async (want: string) => {
    const { value } = await lines.next();
    if (value !== want) throw new Error(`pg-server said ${JSON.stringify(value)}, expected ${want}`);
  };
  const command = async (line: string, answer: string) => {
    child.stdin!.write(`${line}\n`);
    await expectLine(answer);
  };
  await expectLine("started");
  return {
    port,
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    stop: () => command("stop", "stopped"),
    start: () => command("start", "started"),
    exit: () => command("exit", "exited"),
  };
}
