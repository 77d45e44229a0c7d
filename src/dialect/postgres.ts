import { createHash } from "node:crypto";
import type { Notification, Pool, PoolClient } from "pg";
import type { DataSource } from "typeorm";
import type { Logger } from "../logger";
import type { ClaimRequest, Completion, Dialect, TaskRow, WakeHandler } from "./dialect";

/** The channel new tasks are announced on; the payload is a comma-separated list of queues. */
export const NOTIFY_CHANNEL = "ormq_tasks";

// The database clock in epoch milliseconds: every due time and lease compares against this one
// clock, so workers on hosts with skewed clocks agree.
const NOW_MS = `(floor(extract(epoch from statement_timestamp()) * 1000))::bigint`;

/**
 * PostgreSQL: batch claim with `FOR NO KEY UPDATE SKIP LOCKED`, batched guarded completion, and
 * LISTEN/NOTIFY wake-ups. Statements run on the DataSource's own pg pool as named prepared
 * statements.
 */
export class PostgresDialect implements Dialect {
  readonly name = "postgres" as const;
  private listener: { client: PoolClient; detach: () => void } | undefined;
  private closed = false;

  constructor(
    private readonly dataSource: DataSource,
    private readonly table: string,
    readonly workerId: string,
    private readonly logger: Logger,
  ) {}

  private get pool(): Pool {
    return (this.dataSource.driver as unknown as { master: Pool }).master;
  }

  async claim(request: ClaimRequest): Promise<TaskRow[]> {
    const queueFilter = request.queues ? `AND queue = ANY($5::text[])` : "";
    // The MATERIALIZED CTE runs once: without it the planner may re-run the LIMITed subquery in a
    // nested loop and mark more rows than asked for. SKIP LOCKED lets many workers claim at once
    // without waiting on each other's rows.
    const text = `
      WITH picked AS MATERIALIZED (
        SELECT id FROM ${this.table}
        WHERE status = 'pending' AND run_at <= ${NOW_MS} AND type = ANY($1::text[]) ${queueFilter}
        ORDER BY priority DESC, run_at, id
        LIMIT $2
        FOR NO KEY UPDATE SKIP LOCKED
      )
      UPDATE ${this.table} t
      SET status = 'running', attempts = t.attempts + 1, locked_by = $3,
          locked_until = ${NOW_MS} + $4::bigint, started_at = ${NOW_MS}, updated_at = ${NOW_MS}
      FROM picked
      WHERE t.id = picked.id AND t.status = 'pending'
      RETURNING t.*`;
    const values: unknown[] = [request.types, request.limit, this.workerId, request.leaseMs];
    if (request.queues) values.push(request.queues);
    const { rows } = await this.pool.query({ name: statementName("claim", text), text, values });
    return rows;
  }

  async complete(completions: readonly Completion[]): Promise<Set<string>> {
    if (completions.length === 0) return new Set();
    // One statement for the whole batch; each row is guarded by status, holder and attempt, and
    // RETURNING tells which rows the guard let through.
    const text = `
      UPDATE ${this.table} t
      SET status = v.status,
          result = v.result,
          last_error = COALESCE(v.last_error, t.last_error),
          errors = COALESCE(v.errors, t.errors),
          attempts = t.attempts - v.refund,
          run_at = CASE WHEN v.delay_ms IS NULL THEN t.run_at ELSE ${NOW_MS} + v.delay_ms END,
          finished_at = CASE WHEN v.status = 'pending' THEN NULL ELSE ${NOW_MS} END,
          updated_at = ${NOW_MS},
          locked_by = NULL, locked_until = NULL
      FROM unnest($1::bigint[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::int[])
        AS v(id, attempt, status, result, last_error, errors, delay_ms, refund)
      WHERE t.id = v.id AND t.status = 'running' AND t.locked_by = $9 AND t.attempts = v.attempt
      RETURNING t.id`;
    const values = [
      completions.map((c) => c.id),
      completions.map((c) => c.attempt),
      completions.map((c) => c.status),
      completions.map((c) => c.result),
      completions.map((c) => c.lastError),
      completions.map((c) => c.errors),
      completions.map((c) => c.delayMs),
      completions.map((c) => (c.refundAttempt ? 1 : 0)),
      this.workerId,
    ];
    const { rows } = await this.pool.query({ name: statementName("complete", text), text, values });
    return new Set(rows.map((r: { id: unknown }) => String(r.id)));
  }

  async listen(onWake: WakeHandler): Promise<void> {
    // A dedicated pool client holds the LISTEN. If it cannot be had (a transaction-mode pooler,
    // say), the worker still finds tasks by polling.
    try {
      const client = await this.pool.connect();
      const onNotification = (msg: Notification) => {
        if (msg.channel !== NOTIFY_CHANNEL) return;
        onWake(msg.payload ? msg.payload.split(",") : null);
      };
      const onError = (err: Error) => this.logger.warn({ err }, "LISTEN connection failed; polling continues");
      client.on("notification", onNotification);
      client.on("error", onError);
      // The client goes back to the pool at close: it must not keep this worker's handlers.
      const detach = () => {
        client.off("notification", onNotification);
        client.off("error", onError);
      };
      this.listener = { client, detach };
      await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
      if (this.closed) await this.close();
    } catch (err) {
      this.logger.warn({ err }, "LISTEN unavailable; the worker will poll");
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const listener = this.listener;
    this.listener = undefined;
    if (!listener) return;
    const { client, detach } = listener;
    try {
      await client.query(`UNLISTEN ${NOTIFY_CHANNEL}`);
      detach();
      client.release();
    } catch (err) {
      detach();
      client.release(err as Error); // a broken client is destroyed, not reused
    }
  }
}

/** Sends the coalesced wake-up inside the inserting transaction, so it is delivered at commit. */
export async function notifyNewTasks(query: (sql: string, params: unknown[]) => Promise<unknown>, queues: Iterable<string>): Promise<void> {
  // Payload limit is 8000 bytes; past it, an empty payload wakes every worker.
  let payload = [...queues].join(",");
  if (payload.length > 7000) payload = "";
  await query(`SELECT pg_notify($1, $2)`, [NOTIFY_CHANNEL, payload]);
}

function statementName(kind: string, text: string): string {
  return `ormq_${kind}_${createHash("sha1").update(text).digest("hex").slice(0, 12)}`;
}
