import { execFileSync } from "node:child_process";

/**
 * Simulated hosts: a Linux network namespace each, joined to this one by a veth pair with a private
 * /30 (10.201.N.0/30: this side .1, the host's side .2). Traffic stays on these veth ends: a
 * PostgreSQL listening on the .1 addresses is reached from each namespace, and nothing else is.
 * Needs root (`ip netns`).
 */
export interface SimulatedHost {
  namespace: string;
  /** The veth end on this side: down cuts the host off. */
  link: string;
  /** This side's address, which the host connects to. */
  serverAddress: string;
  /** Run a command on the host: prefix it with this. */
  prefix: string[];
}

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}

function quietly(fn: () => void): void {
  try {
    fn();
  } catch {
    // already gone
  }
}

export function createHosts(count: number): SimulatedHost[] {
  const hosts: SimulatedHost[] = [];
  for (let n = 1; n <= count; n++) {
    const namespace = `ormq-h${n}`;
    const link = `ormqh${n}a`;
    const inside = `ormqh${n}b`;
    // Leftovers of an aborted run go first.
    quietly(() => ip("link", "del", link));
    quietly(() => ip("netns", "del", namespace));
    ip("netns", "add", namespace);
    ip("link", "add", link, "type", "veth", "peer", "name", inside);
    ip("link", "set", inside, "netns", namespace);
    ip("addr", "add", `10.201.${n}.1/30`, "dev", link);
    ip("link", "set", link, "up");
    ip("netns", "exec", namespace, "ip", "addr", "add", `10.201.${n}.2/30`, "dev", inside);
    ip("netns", "exec", namespace, "ip", "link", "set", inside, "up");
    ip("netns", "exec", namespace, "ip", "link", "set", "lo", "up");
    hosts.push({ namespace, link, serverAddress: `10.201.${n}.1`, prefix: ["ip", "netns", "exec", namespace] });
  }
  return hosts;
}

export function cutLink(host: SimulatedHost): void {
  ip("link", "set", host.link, "down");
}

export function restoreLink(host: SimulatedHost): void {
  ip("link", "set", host.link, "up");
}

export function removeHosts(hosts: readonly SimulatedHost[]): void {
  for (const host of hosts) {
    quietly(() => ip("link", "del", host.link));
    quietly(() => ip("netns", "del", host.namespace));
  }
}
