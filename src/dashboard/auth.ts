/**
 * Who may use the dashboard, and CSRF protection of its actions. A token (a bearer header, or a
 * cookie set by the login form), a hook into the host application's own sessions, or none, which
 * answers loopback callers only (and the CLI binds only to loopback), and only when they address it
 * by a loopback name (no DNS rebinding: see Guard.hostRefusal). Actions are POSTs carrying a
 * token derived from the caller's credential (the token, or the session the hook names) and a
 * secret of this dashboard: a page on another site cannot read it, so it cannot forge the form.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";
import { InvalidOptionError } from "../errors";

/**
 * How the dashboard authenticates: a token; a hook, `auth(req)`, that allows a request by returning
 * true or, better, the caller's session id (a non-empty string: CSRF tokens are then bound to that
 * session, not shared by every user of the hook); or "none" (loopback callers only, addressing it
 * as localhost, 127.0.0.0/8 or [::1]).
 */
export type DashboardAuth = { token: string } | ((req: IncomingMessage) => boolean | string | null | undefined | Promise<boolean | string | null | undefined>) | "none";

/** The cookie the login form sets. */
export const SESSION_COOKIE = "ormq_dashboard";

/** Checks an auth option: a missing or weak choice is refused when the dashboard is made. */
export function checkAuth(auth: unknown): DashboardAuth {
  if (auth === "none" || typeof auth === "function") return auth as DashboardAuth;
  const token = (auth as { token?: unknown } | null)?.token;
  if (typeof token === "string" && token.length >= 16) return { token };
  throw new InvalidOptionError(
    'ormqDashboard: choose how it authenticates: { auth: { token } } (at least 16 characters), { auth: (req) => boolean } (your own sessions), or { auth: "none" }',
  );
}

export class Guard {
  private readonly secret = randomBytes(32);

  constructor(private readonly auth: DashboardAuth) {}

  /** The caller's credential, when the request is allowed; null otherwise. */
  async identity(req: IncomingMessage): Promise<string | null> {
    if (this.auth === "none") return "none";
    if (typeof this.auth === "function") {
      const allowed: unknown = await this.auth(req);
      if (typeof allowed === "string") return allowed === "" ? null : `session:${allowed}`;
      // Any other truthy value allows (a hook may return its user object), with a shared identity.
      return allowed ? "hook" : null;
    }
    const header = req.headers.authorization;
    const given = header?.startsWith("Bearer ") ? header.slice(7) : cookie(req, SESSION_COOKIE);
    return given !== undefined && same(given, this.auth.token) ? "token" : null;
  }

  /** Whether a login form's token is right (token auth only). */
  tokenMatches(given: string): boolean {
    return typeof this.auth === "object" && same(given, this.auth.token);
  }

  get usesToken(): boolean {
    return typeof this.auth === "object";
  }

  /**
   * With no authentication, only a caller on this machine may use the dashboard: a loopback
   * address, or a Unix socket (no address at all). A request a proxy forwarded (it says so in a
   * `Forwarded`, `X-Forwarded-For` or `X-Real-IP` header) comes from the proxy's caller, whoever
   * that is: refused, as a proxy on this machine would make every caller look local.
   */
  refusesRemote(req: IncomingMessage): boolean {
    if (this.auth !== "none") return false;
    const h = req.headers;
    if (h.forwarded !== undefined || h["x-forwarded-for"] !== undefined || h["x-real-ip"] !== undefined) return true;
    const address = req.socket?.remoteAddress;
    return address !== undefined && !isLoopback(address);
  }

  /**
   * With no authentication, why a request is refused for its Host header; null when it is not.
   * A page of any site can make its own name resolve to 127.0.0.1 (DNS rebinding): the browser
   * then sends that page's requests here, from loopback, and lets the page read the answers
   * (same origin, by name), the CSRF token included. Only the Host header still names the
   * attacker's site, so only loopback names are answered, as local development servers do
   * (Vite, webpack-dev-server). A request without a Host header (HTTP/1.0 allows it) is refused
   * too: every browser sends one, and another client can send `Host: localhost`. With a
   * credential there is nothing to gain: a rebound page has neither the token nor the cookie,
   * which belongs to the real name.
   */
  hostRefusal(req: IncomingMessage): string | null {
    if (this.auth !== "none") return null;
    const host = req.headers.host;
    if (isLoopbackHost(host)) return null;
    const port = req.socket?.localPort;
    const named = host === undefined || host === "" ? "this request has no Host header" : `not Host ${JSON.stringify(host.slice(0, 100))}`;
    return (
      `this dashboard has no authentication (auth: "none"), so it answers only requests addressed to this machine by a loopback name (localhost, 127.0.0.1, [::1]), ${named}: ` +
      `a page of another site can point its own name at this machine (DNS rebinding) and would read the dashboard and use its actions. ` +
      `Address it as localhost${port ? `:${port}` : ""} (or 127.0.0.1, [::1]), or give it a token.`
    );
  }

  /** The CSRF token of a credential. */
  csrf(identity: string): string {
    const credential = typeof this.auth === "object" ? this.auth.token : "";
    return createHmac("sha256", this.secret).update(`${identity}:${credential}`).digest("base64url");
  }

  checkCsrf(identity: string, given: unknown): boolean {
    return typeof given === "string" && same(given, this.csrf(identity));
  }
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) {
      try {
        return decodeURIComponent(v.join("="));
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** 127.0.0.0/8, ::1, IPv4 loopback as IPv6 sockets show it (::ffff:127.0.0.1), and `localhost`. */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  if (address === "localhost") return true;
  const v4 = address.startsWith("::ffff:") ? address.slice(7) : address;
  return address === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/**
 * Whether a Host header names this machine by a loopback name: `localhost`, an address of
 * 127.0.0.0/8, or `[::1]`, each with or without a port (any letter case). Names under
 * `.localhost` are not among them: not every resolver keeps them on this machine.
 */
export function isLoopbackHost(host: string | undefined): boolean {
  const m = /^(\[::1\]|[^:[\]]+)(?::\d{1,5})?$/.exec(host?.toLowerCase() ?? "");
  if (!m) return false;
  return m[1] === "localhost" || m[1] === "[::1]" || (isIP(m[1]) === 4 && m[1].startsWith("127."));
}
