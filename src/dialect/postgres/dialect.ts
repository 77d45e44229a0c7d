import { createHash } from "node:crypto";
import type { Pool, QueryConfig, QueryResult } from "pg";
import type { DataSource } from "typeorm";
import type { Logger } from "../../logger";
import { PostgresListener } from "./listener";
import type { DialectOptions } from "../contract";
import { ClaimWatermark, type ClaimPosition } from "../watermark";
import { tagWriteError } from "../writeFailure";
import { returningColumns } from "../claimOrder";
import { READ_ERRORS, rescueValues } from "../rescueRecord";
import { controlsOf, controlsSql, missingControls } from "../controlsRead";
import { limitedPickSql, rateClaimsSql } from "../limitedClaim";
import { FairCursors, fairHeadSql, fairKeysSql, fairPickSql, keysPerClaim } from "../fairClaim";
import type { ClaimLimits, ClaimRequest, FairClaim, Completion, Controls, Dialect, FinalStatus, Renewal, RescuedTask, Tables, ClaimFilter, TaskRow, WakeHandler, WorkerInfo } from "../dialect";
import { finishedAtAfterOutcomeSql, finishedAtAfterRescueSql, isPlainSuccess, readyWhere, statusAfterOutcomeSql, statusAfterRescueSql } from "../lifecycle";
import { poolOf } from "../libraryInternals";
import { ALL_PRIORITIES, postgresSql } from "./sql";
import { createIndexSql } from "../indexDdl";
import { missingIndexes, TASK_INDEXES } from "../taskIndexes";


// The database clock in epoch milliseconds: every due time and lease compares against this one
// clock, so workers on hosts with skewed clocks agree.
const NOW_MS = `(floor(extract(epoch from statement_timestamp()) * 1000))::bigint`;

/**
 * A status guard the planner cannot serve from the partial indexes (`WHERE status = 'pending'` /
 * `'running'`). Statements that update a batch of rows by id must look each id up in the primary
 * key. Given `t.status = 'running'`, the planner matches the partial lease index, which statistics
 * taken on a quiet queue say holds a row or two, and scans every running row for every id in the
 * batch (measured: 80 ms for 400 completions with 20,000 running, against 5 ms by id; prepared
 * statements switch to such a generic plan after five runs). So batch statements find their rows
 * with `id = ANY(...)` and no join.
 */
/**
 * A claim's filter that commits its own transaction asynchronously (see claimFrom): true, and
 * evaluated once, as the final SELECT's one-time filter.
 */
const ASYNC_COMMIT = `(SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL`;
const NOT_INDEXABLE = (column: string) => `(${column} || '')`;

/** The advisory lock every limited claim takes ("ormq", "lmtd" as int4s): one limited claim at a time. */
const LIMITED_CLAIM_LOCK = [1869770097, 1819112548] as const;

/** SQLSTATE foreign_key_violation (NO ACTION) and restrict_violation (ON DELETE RESTRICT). */
const FOREIGN_KEY_VIOLATIONS = new Set(["23503", "23001"]);

/**
 * PostgreSQL: batch claim with `FOR NO KEY UPDATE SKIP LOCKED`, batched guarded completion, and
 * LISTEN/NOTIFY wake-ups. Statements run on the DataSource's own pg pool as named prepared
 * statements, each taking a connection only for itself: the worker holds none for its life (its
 * LISTEN connection is its own, outside the pool), so it runs on a pool of any size.
 */
export class PostgresDialect implements Dialect {
  readonly name = "postgres" as const;
  readonly completionWriters = 2;
  private readonly watermark = new ClaimWatermark();
  private readonly listener: PostgresListener;

  /**
   * Whether statements go as named prepared statements (parsed and planned once per connection).
   * Not behind a transaction-mode pooler, where a statement prepared on one server connection is
   * missing on the next: set by `pooler: "transaction"`, or found out from the first such failure.
   */
  private named: boolean;
  private readonly slowConnectionMs: number;

  constructor(
    private readonly dataSource: DataSource,
    private readonly tables: Tables,
    readonly workerId: string,
    private readonly logger: Logger,
    options: DialectOptions,
  ) {
    this.slowConnectionMs = options.slowConnectionMs;
    this.named = options.pooler !== "transaction";
    // Behind a transaction-mode pooler LISTEN cannot work (the session it registers on is handed
    // to other clients): only a direct connection (listenUrl) can listen; without one, polling.
    const listenTo = options.listenUrl
      ? () => ({ connectionString: options.listenUrl! })
      : options.pooler === "transaction"
        ? null
        : () => this.pool.options;
    this.listener = new PostgresListener(listenTo, logger, options.origin);
  }

  /**
   * The DataSource's pool. Every statement goes through `query`, which says when it waited for a
   * connection longer than `slowConnectionMs` (a pool too small for the work, or connections held
   * by the application): a silent wait looks like a frozen worker.
   */
  private get pool(): Pool {
    const pool = poolOf(this.dataSource);
    if (!pool) throw new Error("the DataSource's pool is not open: is the DataSource initialized?");
    return pool;
  }

  private async query(config: QueryConfig): Promise<QueryResult> {
    if (!this.named) return this.queryOnce({ text: config.text, values: config.values });
    try {
      return await this.queryOnce(config);
    } catch (err) {
      // "prepared statement … does not exist" (26000) or "… already exists" (42P05) on a statement
      // this connection prepared: the signature of a transaction-mode pooler. Neither ran it.
      const code = (err as { code?: unknown } | null)?.code;
      if (code === "0A000" && /cached plan must not change result type/.test(String((err as Error).message))) {
        // The table changed under a prepared statement that returns whole rows (a migration added
        // a task class's column while workers run): prepare every statement afresh under new names
        // (the stale ones stay unused on their connections until those close). It did not run.
        statementGeneration++;
        return this.queryOnce({ ...config, name: statementName("", config.text) });
      }
      if (code !== "26000" && code !== "42P05") throw err;
      if (this.named) {
        this.named = false;
        this.logger.warn(
          { statement: config.name, code },
          "PostgreSQL lost a prepared statement between transactions: a transaction-mode pooler (PgBouncer)? ormq now sends unnamed statements; set `pooler: \"transaction\"` (ORMQ_POOLER) to say so, and `listenUrl` for wake-ups",
        );
      }
      return this.queryOnce({ text: config.text, values: config.values });
    }
  }

  private async queryOnce(config: QueryConfig): Promise<QueryResult> {
    const pool = this.pool;
    // A connection is handed out at once while one is idle or the pool may open another: the
    // watch (a timer per statement) is for the case where this statement has to queue.
    const mayWait = pool.idleCount === 0 && pool.totalCount >= (pool.options.max ?? 10);
    const timer = !mayWait ? undefined : setTimeout(() => {
      this.logger.warn(
        { statement: config.name, waitedMs: this.slowConnectionMs, poolSize: pool.options.max, inUse: pool.totalCount - pool.idleCount, waiting: pool.waitingCount },
        "waiting for a PostgreSQL pool connection for longer than the lease; the pool may be too small for the worker and the application",
      );
    }, this.slowConnectionMs);
    timer?.unref();
    let client;
    try {
      client = await pool.connect();
    } finally {
      clearTimeout(timer);
    }
    try {
      const result = await client.query(config);
      client.release();
      return result;
    } catch (err) {
      // A connection that failed (rather than a statement the server refused) is not reused.
      client.release(isServerError(err) ? undefined : (err as Error));
      throw err;
    }
  }

  async claim(request: ClaimRequest): Promise<TaskRow[]> {
    if (request.fair) {
      // A fair class's next claim starts at the key after those this one served (see FairCursors).
      const rows = await (request.limits ? this.claimLimited(request, request.limits) : this.claimFair(request, request.fair));
      this.fairCursors.served(request.fair.type, rows.length);
      return rows;
    }
    if (request.limits) return this.claimLimited(request, request.limits);
    // In claim order: the statement sorts its RETURNING rows (the server sorts a batch faster than
    // JavaScript can compare 64-bit values that arrive as strings).
    return this.watermark.claim(request.limit, (after) => this.claimFrom(request, after));
  }

  /** One claim, reading the pending index from its head or from just after `after`. */
  private async claimFrom(request: ClaimRequest, after: ClaimPosition | null): Promise<TaskRow[]> {
    const values: unknown[] = [request.types, request.limit, this.workerId, request.leaseMs];
    const param = (value: unknown) => `$${values.push(value)}`;
    const queueFilter = request.queues ? `AND queue = ANY(${param(request.queues)}::text[])` : "";
    const excluded = request.excludedQueues?.length ? `AND queue <> ALL(${param(request.excludedQueues)}::text[])` : "";
    // Same priority, later in (run_at, id): an index range scan that starts past the entries
    // earlier claims left behind (see ClaimWatermark).
    // From the head: every priority, read in claim order (see ALL_PRIORITIES).
    const resume = after
      ? `AND priority = ${param(after.priority)}::int AND (run_at, id) > (${param(after.runAt)}::bigint, ${param(after.id)}::bigint)`
      : `AND ${ALL_PRIORITIES}`;
    // The MATERIALIZED CTE runs once: without it the planner may re-run the LIMITed subquery in a
    // nested loop and mark more rows than asked for. SKIP LOCKED lets many workers claim at once
    // without waiting on each other's rows.
    //
    // RETURNING gives no order of its own: the final SELECT puts the batch in claim order.
    //
    // The claim commits asynchronously (synchronous_commit off for its own transaction only:
    // set_config's `true`, evaluated once as the final SELECT's one-time filter). Its COMMIT then
    // returns without waiting for the WAL flush (about 0.8 ms here, on every claim). That is safe:
    // a claim lost in a server crash leaves its tasks pending, to be claimed again (at least once
    // holds), and WAL is flushed in order, so once any later durable commit (a completion)
    // returns, the claim before it is on disk too. A session SET would be one more round trip,
    // and behind a transaction pooler it would stick to a server connection other clients share.
    const text = `
      WITH picked AS MATERIALIZED (
        SELECT id FROM ${this.tables.tasks}
        WHERE ${readyWhere(NOW_MS)} AND type = ANY($1::text[]) ${queueFilter} ${excluded} ${resume}
        ORDER BY priority DESC, run_at, id
        LIMIT $2
        FOR NO KEY UPDATE SKIP LOCKED
      ), ${this.claimedFromPicked("$3", "$4", request.columns)}
      SELECT * FROM claimed WHERE ${ASYNC_COMMIT}
      ORDER BY priority DESC, run_at, id`;
    const { rows } = await this.query({ name: statementName("claim", text), text, values });
    return rows;
  }

  /**
   * The claim's write, after a `picked` CTE of task ids: `claimed` marks them running for this
   * worker (guarded: still pending) and returns the rows. No history is written here: the row of
   * the attempt's outcome records its start (see TaskEventEntity). `worker` and `leaseMs` name the
   * statement's parameters holding them.
   */
  private claimedFromPicked(worker: string, leaseMs: string, columns: readonly string[] | undefined): string {
    return `claimed AS (
        UPDATE ${this.tables.tasks} t
        SET status = 'running', attempts = t.attempts + 1, locked_by = ${worker},
            locked_until = ${NOW_MS} + ${leaseMs}::bigint, started_at = ${NOW_MS}, updated_at = ${NOW_MS}
        WHERE t.id = ANY(ARRAY(SELECT id FROM picked)) AND ${NOT_INDEXABLE("t.status")} = 'pending'
        RETURNING ${returningColumns(columns, (c) => `t.${this.dataSource.driver.escape(c)}`, "t.*")}
      )`;
  }

  private readonly fairCursors = new FairCursors();

  /**
   * A fair class's claim (see fairClaim.ts): its keys, then their heads in rounds. No lock: the
   * guarded UPDATE skips a row another worker's claim marked first (it waits for that row's lock,
   * then finds it no longer pending), so two claims reading the same heads never both take one.
   */
  private async claimFair(request: ClaimRequest, fair: FairClaim): Promise<TaskRow[]> {
    const keys = await this.fairKeys(fair.type, keysPerClaim(request.limit));
    if (keys.length === 0) return [];
    if (keys.length === 1) {
      // One key: its head, as a FIFO claim's pick (SKIP LOCKED, in claim order).
      const values: unknown[] = [this.workerId, request.leaseMs];
      const pick = fairHeadSql(this.tables.tasks, () => NOW_MS, request, fair, keys[0], postgresSql.parts(values), "", "FOR NO KEY UPDATE SKIP LOCKED");
      const text = `
        WITH picked AS MATERIALIZED (${pick}), ${this.claimedFromPicked("$1", "$2", request.columns)}
        SELECT * FROM claimed WHERE ${ASYNC_COMMIT}
        ORDER BY priority DESC, run_at, id`;
      const { rows } = await this.query({ name: statementName("fair_head", text), text, values });
      return rows;
    }
    const values: unknown[] = [this.workerId, request.leaseMs];
    const pick = fairPickSql(this.tables.tasks, () => NOW_MS, request, fair, keys, postgresSql.parts(values));
    const text = `
      WITH picked AS MATERIALIZED (${pick}), ${this.claimedFromPicked("$1", "$2", request.columns)}
      SELECT c.* FROM claimed c JOIN picked p ON p.id = c.id
      WHERE ${ASYNC_COMMIT}
      ORDER BY p.ord`;
    // Named (planned once) when no weight is in it: its text then varies only with the number of
    // keys (at most MAX_KEYS_PER_CLAIM texts); a weighted one names its keys, and is not.
    const named = keys.every((k) => !fair.weights.has(k));
    const { rows } = await this.query(named ? { name: statementName("fair_claim", text), text, values } : { text, values });
    return rows;
  }

  /** Statement 1 of a fair claim (see fairClaim.ts): the keys of `type` this claim reads. */
  private fairKeys(type: string, count: number): Promise<string[]> {
    return this.fairCursors.keys(type, count, async (after, n) => {
      const values: unknown[] = [];
      const text = fairKeysSql(this.tables.tasks, type, after, n, postgresSql.parts(values));
      const { rows } = await this.query({ name: statementName("fair_keys", text), text, values });
      return rows.map((r: { fk: unknown }) => String(r.fk));
    });
  }

  /**
   * A claim under concurrency limits: in a transaction that first takes the advisory lock all
   * limited claims share, so that the claim's count of running tasks (a snapshot taken after the
   * lock, under READ COMMITTED) includes every other limited claim's committed tasks and none can
   * be in flight. Three round trips where a plain claim takes one (four with rate limits); only
   * limited tasks pay them.
   */
  private async claimLimited(request: ClaimRequest, limits: ClaimLimits): Promise<TaskRow[]> {
    // A fair class's: its keys first (read outside the lock: they only say where to look).
    const keys = request.fair ? await this.fairKeys(request.fair.type, keysPerClaim(request.limit)) : [];
    if (request.fair && keys.length === 0) return [];
    const fair = request.fair ? { fair: request.fair, keys } : undefined;
    const values: unknown[] = [this.workerId, request.leaseMs];
    const pick = limitedPickSql(this.tables.tasks, this.tables.rateClaims, () => NOW_MS, request, limits, request.limit, postgresSql.parts(values), fair);
    const text = fair
      ? `
      WITH picked AS MATERIALIZED (${pick}), ${this.claimedFromPicked("$1", "$2", request.columns)}
      SELECT c.* FROM claimed c JOIN picked p ON p.id = c.id ORDER BY p.ord`
      : `
      WITH picked AS MATERIALIZED (${pick}), ${this.claimedFromPicked("$1", "$2", request.columns)}
      SELECT * FROM claimed ORDER BY priority DESC, run_at, id`;
    const client = await this.pool.connect();
    try {
      await client.query(`BEGIN; SELECT pg_advisory_xact_lock(${LIMITED_CLAIM_LOCK[0]}, ${LIMITED_CLAIM_LOCK[1]})`);
      const { rows } = await client.query({ text, values });
      // The rate limits' record of these claims, in the same transaction (see rateClaimsSql).
      const ids = rows.map((r: { id: unknown }) => String(r.id));
      for (const statement of rateClaimsSql(this.tables.tasks, this.tables.rateClaims, () => NOW_MS, limits, ids, postgresSql.parts)) {
        await client.query(statement);
      }
      await client.query("COMMIT");
      client.release();
      return rows;
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      client.release(isServerError(err) ? undefined : (err as Error));
      throw err;
    }
  }

  async readControls(): Promise<Controls> {
    try {
      const text = controlsSql(this.tables, postgresSql);
      return controlsOf((await this.query({ name: statementName("controls", text), text })).rows);
    } catch (err) {
      throw missingControls(err);
    }
  }

  async complete(completions: readonly Completion[]): Promise<Map<string, FinalStatus>> {
    // Nearly every outcome is a plain success: those get a statement of their own that sets
    // constants and looks up only the attempt (and a result, if any), where the general one looks
    // up each of a row's values (interleaved batches of 250: 12-13 µs of server time per task
    // against 18-20 without history, 20-26 against 29-36 with it). A batch is written by one
    // statement per kind present, one after another, on one connection at a time.
    const removes: Completion[] = [];
    const successes: Completion[] = [];
    const others: Completion[] = [];
    for (const c of completions) (c.remove ? removes : isPlainSuccess(c) ? successes : others).push(c);
    // Each statement commits on its own: when a later one fails, the completer learns which
    // completions are on disk already (tagWriteError) and does not write them twice.
    const applied = new Map<string, FinalStatus>();
    const parts: [string, Completion[], (cs: Completion[]) => Promise<Map<string, FinalStatus>>][] = [
      ["remove", removes, (cs) => this.removeOrKeep(cs)],
      ["succeed", successes, (cs) => this.succeed(cs, false)],
      ["complete", others, (cs) => this.update(cs)],
    ];
    for (const [statement, part, write] of parts) {
      if (part.length === 0) continue;
      try {
        for (const [id, status] of await write(part)) applied.set(id, status);
      } catch (err) {
        throw tagWriteError(err, statement, applied);
      }
    }
    return applied;
  }

  /** Deletes, or when a foreign key forbids deleting one of them, keeps the whole batch succeeded. */
  private async removeOrKeep(completions: readonly Completion[]): Promise<Map<string, FinalStatus>> {
    try {
      return await this.succeed(completions, true);
    } catch (err) {
      if (!FOREIGN_KEY_VIOLATIONS.has(String((err as { code?: unknown }).code))) throw err;
      this.logger.warn(
        { taskIds: completions.map((c) => c.id), err },
        "succeeded tasks of a class with keepSucceeded = false are kept: another table's foreign key still references one of them",
      );
      return this.succeed(completions, false);
    }
  }

  /**
   * Plain successes, under the same guard as `update`. With `remove` (classes that keep no
   * succeeded tasks) the rows are deleted: much cheaper for the server than a new row version (no
   * index entries, a small WAL record), about 6 µs per task against 12-13.
   */
  private async succeed(completions: readonly Completion[], remove: boolean): Promise<Map<string, FinalStatus>> {
    // $1: attempt by id; $4: ids whose event is recorded; $5: results by id (only those not null).
    const write = remove
      ? `DELETE FROM ${this.tables.tasks} t`
      : `UPDATE ${this.tables.tasks} t
         SET status = 'succeeded', result = $5::jsonb ->> t.id::text, finished_at = ${NOW_MS}, updated_at = ${NOW_MS},
             locked_by = NULL, locked_until = NULL`;
    const text = `
      WITH done AS (
        ${write}
        WHERE t.id = ANY($2::bigint[]) AND ${NOT_INDEXABLE("t.status")} = 'running' AND t.locked_by = $3
          AND t.attempts = ($1::jsonb ->> t.id::text)::int
        RETURNING t.id, t.attempts, t.started_at
      ), history AS (
        INSERT INTO ${this.tables.events} (task_id, kind, at, worker, attempt, started_at)
        SELECT id, 'succeeded', ${NOW_MS}, $3, attempts, started_at FROM done WHERE $4::jsonb ? id::text
      )
      SELECT id FROM done`;
    // Each object keyed by id is written as JSON text directly: built as a JavaScript object, its
    // keys (ids, so array indices to V8) made sparse elements that JSON.stringify walks slowly
    // (about 0.5 µs a completion against 0.15-0.25 in a loop of 1,000).
    let attempts = "";
    let recorded = "";
    let results = "";
    for (const c of completions) {
      const key = JSON.stringify(c.id);
      attempts += `${attempts && ","}${key}:${JSON.stringify(c.attempt)}`;
      if (c.history) recorded += `${recorded && ","}${key}:1`;
      if (c.result !== null) results += `${results && ","}${key}:${JSON.stringify(c.result)}`;
    }
    const values = [`{${attempts}}`, completions.map((c) => c.id), this.workerId, `{${recorded}}`];
    if (!remove) values.push(`{${results}}`);
    const { rows } = await this.query({ name: statementName(remove ? "remove" : "succeed", text), text, values });
    return new Map(rows.map((r: { id: unknown }) => [String(r.id), "succeeded" as const]));
  }

  private async update(completions: readonly Completion[]): Promise<Map<string, FinalStatus>> {
    // One statement for the whole batch; each row is guarded by status, holder and attempt, and
    // RETURNING tells which rows the guard let through, with their new status. A task someone
    // asked to cancel while it ran does not go back to pending.
    //
    // Each row's values come from one jsonb object keyed by id ($1), not from a join with a list
    // of values: with a join the plan depends on statistics (see NOT_INDEXABLE) and went
    // quadratic; here the only way in is the primary key (id = ANY), and each lookup is a jsonb
    // key search.
    const v = (i: number) => `($1::jsonb -> t.id::text ->> ${i})`;
    const e = (i: number) => `($1::jsonb -> d.id::text ->> ${i})`;
    const text = `
      WITH done AS (
      UPDATE ${this.tables.tasks} t
      SET status = ${statusAfterOutcomeSql(v(1), "t.cancel_requested_at")},
          result = ${v(2)},
          last_error = COALESCE(${v(3)}, t.last_error),
          errors = COALESCE(${v(4)}, t.errors),
          attempts = t.attempts - ${v(6)}::int,
          run_at = CASE WHEN ${v(5)} IS NULL THEN t.run_at ELSE ${NOW_MS} + ${v(5)}::bigint END,
          finished_at = ${finishedAtAfterOutcomeSql(v(1), "t.cancel_requested_at", NOW_MS)},
          updated_at = ${NOW_MS},
          locked_by = NULL, locked_until = NULL
      WHERE t.id = ANY($2::bigint[]) AND ${NOT_INDEXABLE("t.status")} = 'running' AND t.locked_by = $3
        AND t.attempts = ${v(0)}::int
      RETURNING t.id, t.status, t.started_at
      ), history AS (
        INSERT INTO ${this.tables.events} (task_id, kind, at, worker, attempt, error, started_at)
        SELECT d.id, CASE WHEN d.status = 'cancelled' THEN 'cancelled' ELSE ${e(7)} END, ${NOW_MS}, $3, ${e(0)}::int, ${e(3)}, d.started_at
        FROM done d
        WHERE ${e(8)}::boolean
      )
      SELECT id, status FROM done`;
    const byId: Record<string, unknown[]> = {};
    for (const c of completions) {
      byId[c.id] = [c.attempt, c.status, c.result, c.lastError, c.errors, c.delayMs, c.refundAttempt ? 1 : 0, c.event, c.history];
    }
    const values = [JSON.stringify(byId), completions.map((c) => c.id), this.workerId];
    const { rows } = await this.query({ name: statementName("complete", text), text, values });
    return new Map(rows.map((r: { id: unknown; status: FinalStatus }) => [String(r.id), r.status]));
  }

  async nextDueInMs(filter: ClaimFilter): Promise<number | null> {
    const queueFilter = filter.queues ? `AND queue = ANY($2::text[])` : "";
    // Served by the partial index ormq_tasks_scheduled (its predicate is repeated here).
    const text = `
      SELECT run_at - ${NOW_MS} AS due_in FROM ${this.tables.tasks}
      WHERE status = 'pending' AND run_at > created_at AND run_at > ${NOW_MS}
        AND type = ANY($1::text[]) ${queueFilter}
      ORDER BY run_at LIMIT 1`;
    const values: unknown[] = [filter.types];
    if (filter.queues) values.push(filter.queues);
    const { rows } = await this.query({ name: statementName("next_due", text), text, values });
    return rows.length === 0 ? null : Number(rows[0].due_in);
  }

  async cancelRequested(ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const text = `
      SELECT id FROM ${this.tables.tasks}
      WHERE id = ANY($1::bigint[]) AND status = 'running' AND locked_by = $2 AND cancel_requested_at IS NOT NULL`;
    const { rows } = await this.query({ name: statementName("cancel_requested", text), text, values: [ids, this.workerId] });
    return rows.map((r: { id: unknown }) => String(r.id));
  }

  async registerWorker(info: WorkerInfo): Promise<void> {
    this.info = info;
    await this.ensureTaskIndexes();
    await this.query({ name: statementName("register", this.upsertWorker), text: this.upsertWorker, values: this.workerValues() });
  }

  /**
   * Creates ormq's own indexes on ormq_tasks that are missing: a schema made by synchronize alone
   * has none of them (see taskIndexes.ts). One catalog read when they are all there.
   */
  private async ensureTaskIndexes(): Promise<void> {
    const { rows } = await this.query({
      text: `SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass`,
      values: [this.tables.tasks],
    });
    for (const index of missingIndexes(TASK_INDEXES, rows.map((r) => String(r.name)))) {
      await this.query({ text: createIndexSql({ ...index, table: this.tables.tasks, ifNotExists: true }) });
      this.logger.info({ index: index.name }, "created ormq's index on ormq_tasks (the schema was made without ormq's migrations)");
    }
  }

  /** This worker's row, as registered; the heartbeat writes it again if it is gone. */
  private info: WorkerInfo | undefined;

  /**
   * The worker's row, inserted, or made alive again: a heartbeat that finds it gone (pruned while
   * the worker was silent, or deleted by hand) writes it again rather than stay invisible.
   */
  private get upsertWorker(): string {
    return `INSERT INTO ${this.tables.workers} (id, name, host, pid, queues, state, started_at, last_heartbeat_at)
      VALUES ($1, $2, $3, $4, $5, 'running', ${NOW_MS}, ${NOW_MS})
      ON CONFLICT (id) DO UPDATE SET last_heartbeat_at = EXCLUDED.last_heartbeat_at`;
  }

  private workerValues(): unknown[] {
    const info = this.info ?? { name: "", host: "", pid: 0, queues: null };
    return [this.workerId, info.name, info.host, info.pid, info.queues ? JSON.stringify(info.queues) : null];
  }

  async heartbeat(runningIds: readonly string[], leaseMs: number): Promise<Renewal> {
    // One round trip: the worker's row (written again if it is gone) and its tasks' leases.
    //
    // The leases are locked with SKIP LOCKED, never waited for. This worker's completer writes
    // the same rows at the same time, in its own order (the plans differ: the completion goes in by
    // primary key, this by whichever index the planner likes), and two multi-row UPDATEs that lock
    // overlapping rows in different orders deadlock: PostgreSQL then aborts one of them (seen
    // behind PgBouncer, four workers, 5,000 tasks). A row it cannot lock at once (held by another
    // transaction, or changed since the statement's snapshot) is reported busy: this worker's by
    // the snapshot, and the next beat says whether it still is. The status tests go through
    // NOT_INDEXABLE so that the plan starts from the ids (the primary key), never from the
    // lease index's every running row.
    const text = `
      WITH alive AS (
        ${this.upsertWorker}
        RETURNING id
      ), ours AS MATERIALIZED (
        SELECT id FROM ${this.tables.tasks}
        WHERE id = ANY($6::bigint[]) AND ${NOT_INDEXABLE("status")} = 'running' AND locked_by = $1
      ), held AS MATERIALIZED (
        SELECT id FROM ${this.tables.tasks}
        WHERE id IN (SELECT id FROM ours) AND ${NOT_INDEXABLE("status")} = 'running' AND locked_by = $1
        FOR NO KEY UPDATE SKIP LOCKED
      ), renewed AS (
        -- Locked above and checked again on the locked version (READ COMMITTED re-checks a row
        -- that changed since the snapshot): the id is guard enough here.
        UPDATE ${this.tables.tasks} t SET locked_until = ${NOW_MS} + $7::bigint
        FROM held WHERE t.id = held.id
        RETURNING t.id
      )
      SELECT id, true AS renewed FROM renewed
      UNION ALL
      SELECT id, false AS renewed FROM ours WHERE id NOT IN (SELECT id FROM held)`;
    const values = [...this.workerValues(), runningIds, leaseMs];
    const { rows } = await this.query({ name: statementName("heartbeat", text), text, values });
    const renewal: Renewal = { renewed: new Set(), busy: new Set() };
    for (const r of rows as { id: unknown; renewed: boolean }[]) (r.renewed ? renewal.renewed : renewal.busy).add(String(r.id));
    return renewal;
  }

  async markStopped(): Promise<void> {
    const text = `UPDATE ${this.tables.workers} SET state = 'stopped', stopped_at = ${NOW_MS}, last_heartbeat_at = ${NOW_MS} WHERE id = $1`;
    await this.query({ name: statementName("stopped", text), text, values: [this.workerId] });
  }

  async rescueExpired(limit: number): Promise<RescuedTask[]> {
    // Read, then a guarded UPDATE: the new `errors` lists are made in JavaScript (rescueValues),
    // so that one row whose `errors` is not valid JSON cannot fail the statement for every other
    // expired task. The UPDATE checks status, lease, holder and attempt again (River issue 1302):
    // a completion or another rescuer that got in between wins, and the row is skipped.
    const read = `
      SELECT id, attempts, locked_by, ${READ_ERRORS} AS errors FROM ${this.tables.tasks}
      WHERE status = 'running' AND locked_until < ${NOW_MS}
      ORDER BY locked_until
      LIMIT $1`;
    const expired = (await this.query({ name: statementName("rescue_read", read), text: read, values: [limit] })).rows as {
      id: unknown;
      attempts: unknown;
      locked_by: string | null;
      errors: unknown;
    }[];
    if (expired.length === 0) return [];
    const now = Date.now();
    const byId: Record<string, [number, string | null, string, string]> = {};
    for (const r of expired) {
      const row = { id: String(r.id), attempts: Number(r.attempts), lockedBy: r.locked_by, errors: r.errors };
      const values = rescueValues(row, now);
      if (values.replaced) this.logger.warn({ taskId: row.id }, "rescue: the task's stored errors were not a readable list; replaced");
      byId[row.id] = [row.attempts, row.lockedBy, values.lastError, values.errors];
    }
    const v = (i: number) => `($1::jsonb -> t.id::text ->> ${i})`;
    // Rows another transaction holds (their holder writing its outcome late, an admin's cancel)
    // are skipped, not waited for: waiting while holding other rows could deadlock with that
    // writer; whatever is still expired is rescued next round.
    const text = `
      WITH free AS MATERIALIZED (
        SELECT id FROM ${this.tables.tasks} WHERE id = ANY($2::bigint[]) FOR NO KEY UPDATE SKIP LOCKED
      ), rescued AS (
      UPDATE ${this.tables.tasks} t
      SET status = ${statusAfterRescueSql("t.")},
          last_error = ${v(2)},
          errors = ${v(3)},
          run_at = ${NOW_MS},
          finished_at = ${finishedAtAfterRescueSql(NOW_MS, "t.")},
          updated_at = ${NOW_MS}, locked_by = NULL, locked_until = NULL
      WHERE t.id IN (SELECT id FROM free) AND ${NOT_INDEXABLE("t.status")} = 'running' AND t.locked_until < ${NOW_MS}
        AND t.attempts = ${v(0)}::int AND t.locked_by IS NOT DISTINCT FROM ${v(1)}
      RETURNING t.id, t.status, t.attempts, t.last_error, t.started_at
      ), history AS (
        -- Always recorded: the rescuer may not have the task's class to ask.
        INSERT INTO ${this.tables.events} (task_id, kind, at, worker, attempt, error, started_at)
        SELECT id, 'rescued', ${NOW_MS}, $3, attempts, last_error, started_at FROM rescued
      )
      SELECT id, status FROM rescued`;
    const values = [JSON.stringify(byId), Object.keys(byId), this.workerId];
    const { rows } = await this.query({ name: statementName("rescue", text), text, values });
    return rows.map((r: { id: unknown; status: FinalStatus }) => ({ id: String(r.id), status: r.status }));
  }

  async listen(onWake: WakeHandler): Promise<void> {
    await this.listener.listen(onWake);
  }

  async close(): Promise<void> {
    await this.listener.close();
  }
}

/** An error the server sent (it has a SQLSTATE): the connection itself is fine. */
function isServerError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code);
}


const statementNames = new Map<string, string>();
/** Bumped when the tables changed under prepared statements: new names, prepared afresh. */
let statementGeneration = 0;

/** A stable prepared-statement name for a statement text, hashed once per text. */
function statementName(kind: string, text: string): string {
  let name = statementNames.get(text);
  if (!name) {
    name = `ormq_${kind}_${createHash("sha1").update(text).digest("hex").slice(0, 12)}`;
    statementNames.set(text, name);
  }
  return statementGeneration === 0 ? name : `${name}_${statementGeneration}`;
}
