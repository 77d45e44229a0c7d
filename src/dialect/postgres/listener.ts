import type { Client, ClientConfig, Notification } from "pg";
import type { Logger } from "../../logger";
import type { WakeHandler } from "../dialect";

/**
 * The channel new tasks are announced on. The payload is JSON, `{"from": origin, "tasks": [...]}`
 * with the announcements (queue and type, see `announcementOf`) and the sender's tag (see
 * origin.ts), or empty for "anything". A plain array (earlier versions) is read as announcements.
 */
export const NOTIFY_CHANNEL = "ormq_tasks";

/** Sends the coalesced wake-up for tasks just committed. */
export async function notifyNewTasks(query: (sql: string, params: unknown[]) => Promise<unknown>, announcements: Iterable<string>, origin: string): Promise<void> {
  // Payload limit is 8000 bytes; past it, an empty payload wakes every worker.
  let payload = JSON.stringify({ from: origin, tasks: [...announcements] });
  if (Buffer.byteLength(payload) > 7000) payload = "";
  await query(`SELECT pg_notify($1, $2)`, [NOTIFY_CHANNEL, payload]);
}

/**
 * A worker's LISTEN, on a connection of its own, made with the pool's settings but outside the
 * pool: a connection held for the worker's whole life must not be one of the pool's, or a small
 * pool (2 connections or fewer) would have none left for completions and heartbeats, and the
 * worker would wait on it for ever. If it cannot be had, or the connection drops (a database
 * restart), the worker keeps finding tasks by polling and this reconnects with backoff. Behind a
 * transaction-mode pooler LISTEN never works; polling is then all there is.
 */
export class PostgresListener {
  private listener: { client: Client; detach: () => void } | undefined;
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private listening: Promise<unknown> | undefined;

  constructor(
    /** Where to LISTEN: connection settings, or null where no connection can (see PostgresDialect). */
    private readonly connection: (() => ClientConfig) | null,
    private readonly logger: Logger,
    /** NOTIFYs from this origin are not ours to answer (see origin.ts). */
    private readonly ownOrigin: string,
  ) {}

  async listen(onWake: WakeHandler): Promise<void> {
    if (!this.connection) {
      this.logger.info({}, "behind a transaction-mode pooler without `listenUrl`: no LISTEN, polling at the poll interval");
      return;
    }
    await this.connect(onWake, 0);
  }

  private async connect(onWake: WakeHandler, failures: number): Promise<void> {
    if (this.closed) return;
    let client: Client | undefined;
    try {
      // pg loaded here, when a listener connects: a process on another database never loads it
      // (TypeORM's PostgreSQL driver has loaded it already where one is used).
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const pg = require("pg") as typeof import("pg");
      client = new pg.Client(this.connection!());
      const connected = client;
      // Listened to before connecting: a failed connect also emits 'error' on some versions.
      connected.on("error", () => {});
      await connected.connect();
      const onNotification = (msg: Notification) => {
        if (msg.channel !== NOTIFY_CHANNEL) return;
        const { from, tasks } = parsePayload(msg.payload);
        if (from !== this.ownOrigin) onWake(tasks);
      };
      const onLost = (err?: Error) => {
        if (this.listener?.client !== connected) return;
        this.listener = undefined;
        detach();
        void connected.end().catch(() => undefined);
        if (this.closed) return;
        this.logger.warn({ err }, "LISTEN connection lost; polling meanwhile, reconnecting");
        // Tasks enqueued while we were deaf get no NOTIFY: look once now.
        onWake(null);
        this.scheduleReconnect(onWake, 1);
      };
      const onEnd = () => onLost();
      const detach = () => {
        connected.off("notification", onNotification);
        connected.off("error", onLost);
        connected.off("end", onEnd);
      };
      connected.on("notification", onNotification);
      connected.on("error", onLost);
      connected.on("end", onEnd);
      this.listener = { client: connected, detach };
      this.listening = connected.query(`LISTEN ${NOTIFY_CHANNEL}`);
      await this.listening;
      if (failures > 0) {
        this.logger.info({}, "LISTEN reconnected");
        onWake(null);
      }
      if (this.closed) await this.close();
    } catch (err) {
      if (this.listener?.client === client) {
        this.listener?.detach();
        this.listener = undefined;
      }
      void client?.end().catch(() => undefined);
      if (this.closed) return;
      this.logger.warn({ err }, "LISTEN unavailable; polling meanwhile");
      this.scheduleReconnect(onWake, failures + 1);
    }
  }

  private scheduleReconnect(onWake: WakeHandler, failures: number): void {
    const delay = Math.min(30_000, 500 * 2 ** Math.min(failures, 6));
    this.reconnectTimer = setTimeout(() => void this.connect(onWake, failures), delay);
    this.reconnectTimer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const listener = this.listener;
    this.listener = undefined;
    if (!listener) return;
    const { client, detach } = listener;
    detach();
    // Closing the connection ends its LISTEN; a broken one may fail to end cleanly.
    await client.end().catch(() => undefined);
  }
}

/** A NOTIFY payload's sender and announcements; tasks null (wake) for an empty or unreadable one. */
function parsePayload(payload: string | undefined): { from: string | null; tasks: string[] | null } {
  const unknown = { from: null, tasks: null };
  if (!payload) return unknown;
  const announcements = (list: unknown) => (Array.isArray(list) && list.every((a) => typeof a === "string") ? list : null);
  try {
    const parsed: unknown = JSON.parse(payload);
    if (Array.isArray(parsed)) return { from: null, tasks: announcements(parsed) };
    if (typeof parsed !== "object" || parsed === null) return unknown;
    const { from, tasks } = parsed as { from?: unknown; tasks?: unknown };
    return { from: typeof from === "string" ? from : null, tasks: announcements(tasks) };
  } catch {
    return unknown;
  }
}
