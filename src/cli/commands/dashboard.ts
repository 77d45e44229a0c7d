/**
 * `ormq dashboard`: serves the web dashboard on its own port until SIGINT/SIGTERM. It binds to
 * 127.0.0.1 unless told otherwise, and refuses to start without an authentication choice: a token
 * (`--token` or ORMQ_DASHBOARD_TOKEN), or `--no-auth`, which only a loopback address may use (and
 * which answers only requests addressed to a loopback name, as the address it prints is: see
 * Guard.hostRefusal).
 */
import { createServer } from "node:http";
import { isIP } from "node:net";
import { ormqDashboard } from "../../dashboard";
import { isLoopback, type DashboardAuth } from "../../dashboard/auth";
import { InvalidOptionError } from "../../errors";
import { parseInteger } from "../../parse";
import { connect, type ConnectionFlags } from "../connect";

type Flags = ConnectionFlags & { port?: string; host?: string; token?: string; auth?: boolean; readOnly?: boolean };

export async function dashboardCommand(flags: Flags): Promise<void> {
  const port = parseInteger(flags.port ?? process.env.ORMQ_DASHBOARD_PORT ?? "8080", "--port", 0, 65_535);
  const host = flags.host ?? "127.0.0.1";
  if (!isLoopback(host) && isIP(host) === 0 && !/^[a-z0-9.-]{1,253}$/i.test(host)) throw new InvalidOptionError(`--host must be an address or a host name, got ${JSON.stringify(host)}`);
  const token = flags.token ?? process.env.ORMQ_DASHBOARD_TOKEN;
  let auth: DashboardAuth;
  if (flags.auth === false) {
    if (!isLoopback(host)) throw new InvalidOptionError(`--no-auth is allowed only on a loopback address (127.0.0.1, ::1, localhost), not ${host}: give --token or ORMQ_DASHBOARD_TOKEN`);
    if (token) throw new InvalidOptionError("--no-auth and a token: choose one");
    auth = "none";
  } else {
    if (!token) throw new InvalidOptionError("the dashboard needs an authentication choice: --token (or ORMQ_DASHBOARD_TOKEN, at least 16 characters), or --no-auth on a loopback address");
    auth = { token };
  }
  const conn = await connect(flags, { command: "dashboard" });
  const server = createServer(ormqDashboard({ dataSource: conn.dataSource, auth, readOnly: flags.readOnly === true }));
  try {
    await new Promise<void>((resolve, reject) => server.once("error", reject).listen(port, host, resolve));
    const address = server.address();
    const shown = typeof address === "object" && address ? `${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}` : `${host}:${port}`;
    process.stdout.write(`ormq dashboard on http://${shown}/${flags.readOnly ? " (read-only)" : ""}\n`);
    await new Promise<void>((resolve) => {
      process.once("SIGINT", resolve);
      process.once("SIGTERM", resolve);
    });
  } finally {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections(); // open pages' keep-alive connections would hold the close
    await closed;
    await conn.close();
  }
}
