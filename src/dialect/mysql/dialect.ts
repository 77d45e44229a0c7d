/**
 * The worker's session on MySQL 8.0+ and MariaDB 10.6+ (see docs/mysql.md). Without RETURNING, a
 * claim is a transaction of two statements: `SELECT … FOR UPDATE SKIP LOCKED` picks, locks and
 * reads the ready rows with the database's now, and the UPDATE marks them (guarded: still
 * pending, its row count checked), the rows handed to the worker being the ones read with the
 * UPDATE's values written into them. A completion locks the rows this worker still holds, works
 * out each one's status in JavaScript (lifecycle.ts: a cancel request wins over a return to the
 * queue) and writes them under the full guard, checking row counts: plain successes and
 * deletions one statement each per batch, other outcomes one by one. Every transaction runs at
 * READ COMMITTED, set for itself (never globally): REPEATABLE READ's gap locks are what deadlock
 * claims. Deadlocks (1213) and lock wait timeouts (1205) roll the whole transaction back and run
 * it again. Statements go through TypeORM's query runners on the DataSource's pool, one
 * connection per transaction.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { DataSource, QueryRunner } from "typeorm";
import type { Logger } from "../../logger";
import { returningColumns } from "../claimOrder";
import { controlsOf, controlsSql, missingControls } from "../controlsRead";
import type { TransientReason } from "../contract";
import type { ClaimFilter, ClaimLimits, ClaimRequest, FairClaim, Completion, Controls, Dialect, FinalStatus, Renewal, RescuedTask, Tables, TaskRow, WakeHandler, WorkerInfo } from "../dialect";
import { isPlainSuccess, readyWhere, statusAfterOutcome, statusAfterRescue } from "../lifecycle";
import { limitedPickSql, rateClaimsSql } from "../limitedClaim";
import { FairCursors, fairHeadSql, fairPickSql, inPickOrder, keysPerClaim } from "../fairClaim";
import { KnownKeys, nextKeysSql } from "./fairKeys";
import { READ_ERRORS, rescueValues } from "../rescueRecord";
import { FAIR_INDEX_WITHOUT_WHERE, missingIndexes, TASK_INDEXES } from "../taskIndexes";
import { ClaimWatermark, resumeAfterSql, type ClaimPosition } from "../watermark";
import { tagWriteError } from "../writeFailure";
import { createIndexSql } from "./schema";
import { MYSQL_NOW_MS, mysqlSql } from "./sql";

const NOW_MS = MYSQL_NOW_MS;
const escape = mysqlSql.escape;

/** Runs one statement in the session's current transaction. */
type Run = (sql: string, values?: unknown[]) => Promise<unknown>;

/** MySQL's deadlock and lock wait timeout: transient, the transaction runs again. */
const TRANSIENT_ERRNOS = new Map<number, TransientReason>([
  [1213, "deadlock"],
  [1205, "lock_wait_timeout"],
]);
const MAX_RETRIES = 8;

/** A row of another table references this one (ON DELETE RESTRICT / NO ACTION). */
const ROW_IS_REFERENCED = 1451;

/** The name under which a claim reads the database's now beside each row (not a column: hydrate ignores it). */
const CLAIM_NOW = "ormq_claim_now";

/** The named lock every limited claim takes: one limited claim at a time (PostgreSQL's advisory lock). */
const LIMITED_CLAIM_LOCK = "ormq:limited_claim";

/** Wake-up polling: quick after a change, slower while nothing changes. */
const POLL_MIN_MS = 50;
const POLL_MAX_MS = 1_000;

/** A task row a completion holds locked: what its guarded writes and its event need. */
interface HeldRow {
  id: unknown;
  attempts: unknown;
  cancel_requested_at: unknown;
  started_at: unknown;
}

export class MysqlDialect implements Dialect {
  readonly name = "mysql" as const;
  /** Two completion transactions at once, each on its own connection: their rows never overlap. */
  readonly completionWriters = 2;
  readonly claimMaySkipReady = true;
  private readonly watermark = new ClaimWatermark();
  private pollTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private info: WorkerInfo | undefined;

  constructor(
    private readonly dataSource: DataSource,
    private readonly tables: Tables,
    readonly workerId: string,
    private readonly logger: Logger,
    /** Told of each transaction run again after a deadlock or lock wait timeout (the metrics count them). */
    private readonly onTransientRetry?: (reason: TransientReason) => void,
  ) {}

  /** A deadlock or lock wait timeout: told, and waited out with jitter before the next try. */
  private async retryAfter(err: unknown, attempt: number): Promise<void> {
    this.logger.debug({ err, attempt }, "MySQL deadlock or lock wait timeout: the transaction runs again");
    try {
      this.onTransientRetry?.(transientReason(err)!);
    } catch (listenerErr) {
      this.logger.warn({ err: listenerErr }, "a transient-retry listener threw; ignored");
    }
    await sleep(2 + Math.random() * Math.min(50, 5 * 2 ** attempt));
  }

  /** `fn` in one READ COMMITTED transaction on a connection of its own, run again on a deadlock or lock wait timeout. */
  private async transaction<T>(fn: (run: Run, runner: QueryRunner) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const runner = this.dataSource.createQueryRunner();
      try {
        await runner.connect();
        await runner.startTransaction("READ COMMITTED");
        const result = await fn((sql, values = []) => runner.query(sql, values), runner);
        await runner.commitTransaction();
        return result;
      } catch (err) {
        if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
        if (!transientReason(err) || attempt >= MAX_RETRIES) throw err;
        await this.retryAfter(err, attempt);
      } finally {
        await runner.release();
      }
    }
  }

  /** One statement on its own (autocommitted), with the same retry. */
  private async statement(sql: string, values: unknown[] = []): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.dataSource.query(sql, values);
      } catch (err) {
        if (!transientReason(err) || attempt >= MAX_RETRIES) throw err;
        await this.retryAfter(err, attempt);
      }
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
    return this.watermark.claim(request.limit, (after) => this.claimFrom(request, after));
  }

  /** One claim, reading the claim index from the head of the pending tasks or from just after `after`. */
  private async claimFrom(request: ClaimRequest, after: ClaimPosition | null): Promise<TaskRow[]> {
    return this.transaction(async (run) => {
      const values: unknown[] = [];
      const p = mysqlSql.parts(values);
      const types = p.inList("type", request.types);
      const queues = request.queues ? `AND ${p.inList("queue", request.queues)}` : "";
      const excluded = request.excludedQueues?.length ? `AND ${p.notInList("queue", request.excludedQueues)}` : "";
      // Same priority, later in (run_at, id): a range of the claim index that starts past the
      // entries earlier claims left behind until InnoDB's purge takes them (see ClaimWatermark).
      const resume = after ? `AND ${resumeAfterSql(after, p)}` : "";
      // The claim index, (status, priority DESC, run_at, id), read in order, and named: a locking
      // read locks every row it examines, and the optimizer, on a small or young table, likes the
      // (status, run_at) index and a sort, which examines (and locks) every pending row, so that
      // a second worker's claim at the same moment skips them all and gets none.
      const picked = (await run(
        `SELECT ${this.claimedColumns(request)} FROM ${this.tables.tasks} t FORCE INDEX (ormq_tasks_claim)
         WHERE ${readyWhere(NOW_MS)} AND ${types} ${queues} ${excluded} ${resume}
         ORDER BY priority DESC, run_at, id
         LIMIT ${p.param(request.limit, "int")}
         FOR UPDATE SKIP LOCKED`,
        values,
      )) as TaskRow[];
      return this.markClaimed(run, picked, request);
    });
  }

  /** What a claim reads of each row it locks: the columns the worker needs, and the database's now. */
  private claimedColumns(request: ClaimRequest): string {
    return `${returningColumns(request.columns, (c) => `t.${escape(c)}`, "t.*")}, ${NOW_MS} AS ${CLAIM_NOW}`;
  }

  private readonly fairCursors = new FairCursors();
  private readonly knownKeys = new KnownKeys();
  /**
   * The fair index named in a single key's claim: without it the optimizer takes the claim index
   * with a resumed claim's bounds as a filter, not a range (measured: 6,231 tasks/s with it, 5,025
   * without, 30,000 tasks of one tenant on MariaDB). Dropped if the index is missing.
   */
  private fairIndexHint = "FORCE INDEX (ormq_tasks_fair)";
  /** Per fair key, where its next single-key claim resumes (bounded: a worker serves a few keys at a time). */
  private readonly fairMarks = new Map<string, ClaimWatermark>();

  /**
   * A fair class's claim (see fairClaim.ts): its keys and the heads picked read without locks, then
   * the picked rows locked (SKIP LOCKED: those another claim holds are left to it) and marked.
   */
  private async claimFair(request: ClaimRequest, fair: FairClaim): Promise<TaskRow[]> {
    return this.transaction(async (run) => {
      const keys = await this.fairKeys(run, fair.type, keysPerClaim(request.limit));
      if (keys.length === 0) return [];
      if (keys.length === 1) {
        // One key: its head, read and locked at once, as a FIFO claim's, from just after the key's
        // last claimed position (InnoDB's delete-marked entries stay at the head until purge).
        const key = keys[0];
        let mark = this.fairMarks.get(key);
        if (!mark) {
          if (this.fairMarks.size >= 1_000) this.fairMarks.clear();
          this.fairMarks.set(key, (mark = new ClaimWatermark()));
        }
        const picked = await mark.claim(request.limit, async (after) => {
          const read = async () => {
            const values: unknown[] = [];
            const head = fairHeadSql(this.tables.tasks, () => NOW_MS, request, fair, key, mysqlSql.parts(values), `t ${this.fairIndexHint}`, "FOR UPDATE SKIP LOCKED", this.claimedColumns(request), after);
            return (await run(head, values)) as TaskRow[];
          };
          try {
            return await read();
          } catch (err) {
            // The index is made by this worker at its start; when that could not be done (see
            // ensureIndexes), claims go on without the hint rather than fail.
            if (errnoOf(err) !== KEY_DOES_NOT_EXIST || this.fairIndexHint === "") throw err;
            this.fairIndexHint = "";
            this.logger.warn({ index: "ormq_tasks_fair" }, "the fair claim's index is missing: fair claims read without it (slower)");
            return read();
          }
        });
        return this.markClaimed(run, picked, request);
      }
      const values: unknown[] = [];
      const ids = ((await run(fairPickSql(this.tables.tasks, () => NOW_MS, request, fair, keys, mysqlSql.parts(values)), values)) as { id: unknown }[]).map((r) => String(r.id));
      if (ids.length === 0) return [];
      const picked = (await run(
        `SELECT ${this.claimedColumns(request)} FROM ${this.tables.tasks} t
         WHERE id IN (${ids.map(() => "?").join(", ")}) AND status = 'pending'
         FOR UPDATE SKIP LOCKED`,
        ids,
      )) as TaskRow[];
      return this.markClaimed(run, inPickOrder(picked, ids), request);
    });
  }

  /** Statement 1 of a fair claim (see fairClaim.ts): the keys of `type` this claim reads. */
  private fairKeys(run: Run, type: string, count: number): Promise<string[]> {
    // Found from the keys seen before (see fairKeys.ts): MySQL cannot seek by a recursion's value.
    return this.fairCursors.keys(type, count, (after, n) =>
      this.knownKeys.read(type, after, n, async (from, probes, most) => {
        const values: unknown[] = [];
        const text = nextKeysSql(this.tables.tasks, type, from, probes, most, mysqlSql.parts(values));
        return ((await run(text, values)) as { fk: unknown }[]).map((r) => String(r.fk));
      }),
    );
  }

  /**
   * A claim under concurrency limits: the named lock all limited claims share is taken first, so
   * that this claim's count of running tasks includes every other limited claim's (see
   * limitedClaim.ts); released before the connection goes back to the pool.
   */
  private async claimLimited(request: ClaimRequest, limits: ClaimLimits): Promise<TaskRow[]> {
    return this.transaction(async (run) => {
      // A fair class's: its keys first (read before the lock: they only say where to look).
      const keys = request.fair ? await this.fairKeys(run, request.fair.type, keysPerClaim(request.limit)) : [];
      if (request.fair && keys.length === 0) return [];
      const fair = request.fair ? { fair: request.fair, keys } : undefined;
      const [lock] = (await run(`SELECT GET_LOCK(?, 30) AS got`, [LIMITED_CLAIM_LOCK])) as { got: unknown }[];
      if (Number(lock?.got) !== 1) return [];
      try {
        const values: unknown[] = [];
        const parts = mysqlSql.parts(values);
        const pick = limitedPickSql(this.tables.tasks, this.tables.rateClaims, () => NOW_MS, request, limits, request.limit, parts, fair);
        const ids = ((await run(pick, values)) as { id: unknown }[]).map((r) => String(r.id));
        const locked =
          ids.length === 0
            ? []
            : ((await run(
                `SELECT ${this.claimedColumns(request)} FROM ${this.tables.tasks} t
                 WHERE id IN (${ids.map(() => "?").join(", ")}) AND status = 'pending'
                 ORDER BY priority DESC, run_at, id FOR UPDATE`,
                ids,
              )) as TaskRow[]);
        // A fair pick's order is its rounds' (see fairClaim.ts).
        const picked = fair ? inPickOrder(locked, ids) : locked;
        const rows = await this.markClaimed(run, picked, request);
        // The rate limits' record of the tasks claimed (a picked row another claim took meanwhile is not).
        const claimed = rows.map((r) => String(r.id));
        for (const statement of rateClaimsSql(this.tables.tasks, this.tables.rateClaims, () => NOW_MS, limits, claimed, mysqlSql.parts)) {
          await run(statement.text, statement.values);
        }
        return rows;
      } finally {
        await run(`SELECT RELEASE_LOCK(?)`, [LIMITED_CLAIM_LOCK]);
      }
    });
  }

  /**
   * Marks the picked rows (read and locked by this transaction, in claim order, with the database's
   * now) running for this worker, and returns them as written: the UPDATE's values are set on the
   * rows read instead of reading them back, one round trip fewer. Its row count must be the rows'
   * (they are locked): any other count throws, and the transaction rolls back. No history is
   * written here: the row of the attempt's outcome records its start (see TaskEventEntity).
   */
  private async markClaimed(run: Run, picked: TaskRow[], request: ClaimRequest): Promise<TaskRow[]> {
    if (picked.length === 0) return [];
    const now = String(picked[0][CLAIM_NOW]);
    const lockedUntil = String(Number(now) + request.leaseMs);
    const ids = picked.map((r) => String(r.id));
    const written = await run(
      `UPDATE ${this.tables.tasks}
       SET status = 'running', attempts = attempts + 1, locked_by = ?, locked_until = ?, started_at = ?, updated_at = ?
       WHERE id IN (${ids.map(() => "?").join(", ")}) AND status = 'pending'`,
      [this.workerId, lockedUntil, now, now, ...ids],
    );
    if (affected(written) !== picked.length) throw new Error(`the claim marked ${affected(written)} rows for ${picked.length} locked`);
    for (const row of picked) {
      // Left on the row (a delete would turn each row object into a slow dictionary): hydrate
      // reads only the task's columns.
      Object.assign(row, { status: "running", attempts: Number(row.attempts) + 1, locked_by: this.workerId, locked_until: lockedUntil, started_at: now, updated_at: now });
    }
    return picked;
  }

  async complete(completions: readonly Completion[]): Promise<Map<string, FinalStatus>> {
    if (completions.length === 0) return new Map();
    try {
      return await this.transaction(async (run) => {
        const ids = completions.map((c) => c.id);
        // The rows this worker still holds, locked: nothing changes them until the writes below.
        const held = new Map(
          ((await run(
            `SELECT id, attempts, cancel_requested_at, started_at FROM ${this.tables.tasks}
             WHERE id IN (${ids.map(() => "?").join(", ")}) AND status = 'running' AND locked_by = ? FOR UPDATE`,
            [...ids, this.workerId],
          )) as HeldRow[]).map((r) => [String(r.id), r]),
        );
        const applied = new Map<string, FinalStatus>();
        const ours = completions.filter((c) => Number(held.get(c.id)?.attempts) === c.attempt); // the rest are no longer this attempt's to finish
        // Plain successes (nearly every outcome) in one statement, successes of classes that keep
        // none in one DELETE; the rest one by one.
        const successes = ours.filter((c) => isPlainSuccess(c));
        if (successes.length > 0 && (await this.succeedAll(run, successes, held))) for (const c of successes) applied.set(c.id, "succeeded");
        const removes = ours.filter((c) => c.remove && c.status === "succeeded");
        if (removes.length > 1 && (await this.removeAll(run, removes, held))) for (const c of removes) applied.set(c.id, "succeeded");
        for (const c of ours) {
          if (applied.has(c.id)) continue;
          const status = await this.completeOne(run, c, held.get(c.id)!);
          if (status) applied.set(c.id, status);
        }
        return applied;
      });
    } catch (err) {
      // The transaction rolled back: none of the batch is on disk.
      throw tagWriteError(err, "complete", new Map());
    }
  }

  /**
   * Plain successes of rows this transaction holds locked (so the guard cannot but let each
   * through): one guarded UPDATE for all, its row count checked (a different count throws, and
   * the transaction rolls back), and their events in one INSERT.
   */
  private async succeedAll(run: Run, successes: readonly Completion[], held: ReadonlyMap<string, HeldRow>): Promise<boolean> {
    const marks = successes.map(() => "?").join(", ");
    const ids = successes.map((c) => c.id);
    const withResult = successes.filter((c) => c.result !== null);
    const result = withResult.length === 0 ? "NULL" : `CASE id ${withResult.map(() => "WHEN ? THEN ?").join(" ")} ELSE NULL END`;
    const attempts = `CASE id ${successes.map(() => "WHEN ? THEN ?").join(" ")} END`;
    const written = await run(
      `UPDATE ${this.tables.tasks}
       SET status = 'succeeded', result = ${result}, finished_at = ${NOW_MS}, updated_at = ${NOW_MS}, locked_by = NULL, locked_until = NULL
       WHERE id IN (${marks}) AND status = 'running' AND locked_by = ? AND attempts = ${attempts}`,
      [...withResult.flatMap((c) => [c.id, c.result]), ...ids, this.workerId, ...successes.flatMap((c) => [c.id, c.attempt])],
    );
    if (affected(written) !== successes.length) {
      // Cannot happen while the rows are locked; if it does, nothing of it stands.
      throw new Error(`the batched success wrote ${affected(written)} rows for ${successes.length}`);
    }
    await this.recordSuccesses(run, successes.filter((c) => c.history), held);
    return true;
  }

  /**
   * Successes of classes that keep no succeeded tasks, rows this transaction holds locked: one
   * guarded DELETE for all, its row count checked, and their events in one INSERT. False when
   * another table's foreign key refuses the DELETE (nothing of it is written: the statement rolls
   * back alone): each is then written on its own, and a referenced one kept, as `completeOne` does.
   */
  private async removeAll(run: Run, removes: readonly Completion[], held: ReadonlyMap<string, HeldRow>): Promise<boolean> {
    const attempts = `CASE id ${removes.map(() => "WHEN ? THEN ?").join(" ")} END`;
    let written: unknown;
    try {
      written = await run(
        `DELETE FROM ${this.tables.tasks}
         WHERE id IN (${removes.map(() => "?").join(", ")}) AND status = 'running' AND locked_by = ? AND attempts = ${attempts}`,
        [...removes.map((c) => c.id), this.workerId, ...removes.flatMap((c) => [c.id, c.attempt])],
      );
    } catch (err) {
      if (errnoOf(err) === ROW_IS_REFERENCED) return false;
      throw err;
    }
    if (affected(written) !== removes.length) throw new Error(`the batched removal deleted ${affected(written)} rows for ${removes.length}`);
    await this.recordSuccesses(run, removes.filter((c) => c.history), held);
    return true;
  }

  /** "succeeded" events of these completions, with their attempts' starts, in one INSERT. */
  private async recordSuccesses(run: Run, recorded: readonly Completion[], held: ReadonlyMap<string, HeldRow>): Promise<void> {
    if (recorded.length === 0) return;
    await run(
      `INSERT INTO ${this.tables.events} (task_id, kind, at, worker, attempt, error, started_at) VALUES ${recorded.map(() => `(?, 'succeeded', ${NOW_MS}, ?, ?, NULL, ?)`).join(", ")}`,
      recorded.flatMap((c) => [c.id, this.workerId, c.attempt, held.get(c.id)?.started_at ?? null]),
    );
  }

  /** One guarded write of an outcome, and its event; the status written, or null when the guard refused it. */
  private async completeOne(run: Run, c: Completion, held: HeldRow): Promise<FinalStatus | null> {
    const guard = `id = ? AND status = 'running' AND locked_by = ? AND attempts = ?`;
    const guardValues = [c.id, this.workerId, c.attempt];
    if (c.remove) {
      try {
        const removed = (await run(`DELETE FROM ${this.tables.tasks} WHERE ${guard}`, guardValues)) as { affectedRows?: number };
        if (affected(removed) !== 1) return null;
        if (c.history) await this.recordEvent(run, c, "succeeded", held.started_at);
        return "succeeded";
      } catch (err) {
        if (errnoOf(err) !== ROW_IS_REFERENCED) throw err;
        this.logger.warn({ taskId: c.id, err }, "a succeeded task of a class with keepSucceeded = false is kept: another table's foreign key still references it");
      }
    }
    const status = statusAfterOutcome(c.status, held.cancel_requested_at !== null);
    const back = status === "pending";
    const written = await run(
      `UPDATE ${this.tables.tasks}
       SET status = ?, result = ?, last_error = COALESCE(?, last_error), errors = COALESCE(?, errors),
           attempts = attempts - ?, run_at = ${c.delayMs === null ? "run_at" : `${NOW_MS} + ?`},
           finished_at = ${back ? "NULL" : NOW_MS}, updated_at = ${NOW_MS}, locked_by = NULL, locked_until = NULL
       WHERE ${guard}`,
      [status, c.result, c.lastError, c.errors, c.refundAttempt ? 1 : 0, ...(c.delayMs === null ? [] : [c.delayMs]), ...guardValues],
    );
    if (affected(written) !== 1) return null;
    if (c.history) await this.recordEvent(run, c, status === "cancelled" ? "cancelled" : c.event, held.started_at);
    return status;
  }

  /** The event of an attempt's outcome, with the attempt's start. */
  private async recordEvent(run: Run, c: Completion, kind: string, startedAt: unknown): Promise<void> {
    await run(`INSERT INTO ${this.tables.events} (task_id, kind, at, worker, attempt, error, started_at) VALUES (?, ?, ${NOW_MS}, ?, ?, ?, ?)`, [
      c.id,
      kind,
      this.workerId,
      c.attempt,
      c.lastError,
      startedAt,
    ]);
  }

  async nextDueInMs(filter: ClaimFilter): Promise<number | null> {
    const values: unknown[] = [];
    const p = mysqlSql.parts(values);
    const queues = filter.queues ? `AND ${p.inList("queue", filter.queues)}` : "";
    const types = p.inList("type", filter.types);
    const rows = (await this.statement(
      `SELECT run_at - ${NOW_MS} AS due_in FROM ${this.tables.tasks}
       WHERE status = 'pending' AND run_at > created_at AND run_at > ${NOW_MS} AND ${types} ${queues}
       ORDER BY run_at LIMIT 1`,
      values,
    )) as { due_in: unknown }[];
    return rows.length === 0 ? null : Number(rows[0].due_in);
  }

  async cancelRequested(ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const rows = (await this.statement(
      `SELECT id FROM ${this.tables.tasks}
       WHERE id IN (${ids.map(() => "?").join(", ")}) AND status = 'running' AND locked_by = ? AND cancel_requested_at IS NOT NULL`,
      [...ids, this.workerId],
    )) as { id: unknown }[];
    return rows.map((r) => String(r.id));
  }

  async readControls(): Promise<Controls> {
    try {
      return controlsOf((await this.statement(controlsSql(this.tables, mysqlSql))) as Record<string, unknown>[]);
    } catch (err) {
      throw missingControls(err);
    }
  }

  async registerWorker(info: WorkerInfo): Promise<void> {
    this.info = info;
    await this.ensureTaskIndexes();
    await this.statement(this.upsertWorker, this.workerValues());
  }

  /** Creates ormq's own indexes on ormq_tasks that are missing (a schema made by synchronize alone: see taskIndexes.ts). */
  private async ensureTaskIndexes(): Promise<void> {
    const [database, table] = splitTable(this.tables.tasks);
    const rows = (await this.statement(
      `SELECT DISTINCT index_name AS name FROM information_schema.statistics WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ?`,
      [database, table],
    )) as { name: string }[];
    const wanted = this.info?.fair ? [...TASK_INDEXES, FAIR_INDEX_WITHOUT_WHERE] : TASK_INDEXES;
    for (const index of missingIndexes(wanted, rows.map((r) => String(r.name)))) {
      const sql = createIndexSql({ ...index, table: this.tables.tasks });
      if (!sql) continue;
      try {
        await this.statement(sql);
        this.logger.info({ index: index.name }, "created ormq's index on ormq_tasks (the schema was made without ormq's migrations)");
      } catch (err) {
        if (errnoOf(err) !== 1061) throw err; // ER_DUP_KEYNAME: another worker made it meanwhile
      }
    }
  }

  /** The worker's row, inserted, or made alive again (a heartbeat that finds it gone writes it again). */
  private get upsertWorker(): string {
    return `INSERT INTO ${this.tables.workers} (id, name, host, pid, queues, state, started_at, last_heartbeat_at)
      VALUES (?, ?, ?, ?, ?, 'running', ${NOW_MS}, ${NOW_MS})
      ON DUPLICATE KEY UPDATE last_heartbeat_at = ${NOW_MS}`;
  }

  private workerValues(): unknown[] {
    const info = this.info ?? { name: "", host: "", pid: 0, queues: null };
    return [this.workerId, info.name, info.host, info.pid, info.queues ? JSON.stringify(info.queues) : null];
  }

  async heartbeat(runningIds: readonly string[], leaseMs: number): Promise<Renewal> {
    await this.statement(this.upsertWorker, this.workerValues());
    const renewal: Renewal = { renewed: new Set(), busy: new Set() };
    if (runningIds.length === 0) return renewal;
    return this.transaction(async (run) => {
      const marks = runningIds.map(() => "?").join(", ");
      const ours = ((await run(`SELECT id FROM ${this.tables.tasks} WHERE id IN (${marks}) AND status = 'running' AND locked_by = ?`, [
        ...runningIds,
        this.workerId,
      ])) as { id: unknown }[]).map((r) => String(r.id));
      if (ours.length === 0) return renewal;
      // Never waits for a row another transaction holds (this worker's own completion, a cancel):
      // such a row is reported busy, and the next beat tells.
      const held = ((await run(
        `SELECT id FROM ${this.tables.tasks} WHERE id IN (${ours.map(() => "?").join(", ")}) AND status = 'running' AND locked_by = ? FOR UPDATE SKIP LOCKED`,
        [...ours, this.workerId],
      )) as { id: unknown }[]).map((r) => String(r.id));
      if (held.length > 0) {
        await run(`UPDATE ${this.tables.tasks} SET locked_until = ${NOW_MS} + ? WHERE id IN (${held.map(() => "?").join(", ")})`, [leaseMs, ...held]);
      }
      for (const id of held) renewal.renewed.add(id);
      for (const id of ours) if (!renewal.renewed.has(id)) renewal.busy.add(id);
      return renewal;
    });
  }

  async markStopped(): Promise<void> {
    await this.statement(`UPDATE ${this.tables.workers} SET state = 'stopped', stopped_at = ${NOW_MS}, last_heartbeat_at = ${NOW_MS} WHERE id = ?`, [this.workerId]);
  }

  async rescueExpired(limit: number): Promise<RescuedTask[]> {
    // Read, then a guarded write per row: the new `errors` lists are made in JavaScript
    // (rescueValues), so one unreadable row cannot fail the rescue of the others.
    const expired = (await this.statement(
      `SELECT id, attempts, locked_by, ${READ_ERRORS} AS errors FROM ${this.tables.tasks}
       WHERE status = 'running' AND locked_until < ${NOW_MS} ORDER BY locked_until LIMIT ${Math.max(1, Math.floor(limit))}`,
    )) as { id: unknown; attempts: unknown; locked_by: string | null; errors: unknown }[];
    if (expired.length === 0) return [];
    const now = Date.now();
    return this.transaction(async (run) => {
      const ids = expired.map((r) => String(r.id));
      // Rows another transaction holds are skipped, not waited for: rescued next round if still expired.
      const free = new Map(
        ((await run(
          `SELECT id, attempts, max_attempts, cancel_requested_at, locked_by, started_at FROM ${this.tables.tasks}
           WHERE id IN (${ids.map(() => "?").join(", ")}) AND status = 'running' AND locked_until < ${NOW_MS} FOR UPDATE SKIP LOCKED`,
          ids,
        )) as { id: unknown; attempts: unknown; max_attempts: unknown; cancel_requested_at: unknown; locked_by: string | null; started_at: unknown }[]).map((r) => [String(r.id), r]),
      );
      const rescued: RescuedTask[] = [];
      for (const r of expired) {
        const id = String(r.id);
        const row = free.get(id);
        if (!row || Number(row.attempts) !== Number(r.attempts) || row.locked_by !== r.locked_by) continue;
        const values = rescueValues({ id, attempts: Number(r.attempts), lockedBy: r.locked_by, errors: r.errors }, now);
        if (values.replaced) this.logger.warn({ taskId: id }, "rescue: the task's stored errors were not a readable list; replaced");
        const status = statusAfterRescue(row.cancel_requested_at !== null, Number(row.attempts), Number(row.max_attempts)) as FinalStatus;
        const written = await run(
          `UPDATE ${this.tables.tasks}
           SET status = ?, last_error = ?, errors = ?, run_at = ${NOW_MS}, finished_at = ${status === "pending" ? "NULL" : NOW_MS},
               updated_at = ${NOW_MS}, locked_by = NULL, locked_until = NULL
           WHERE id = ? AND status = 'running' AND locked_until < ${NOW_MS} AND attempts = ? AND locked_by <=> ?`,
          [status, values.lastError, values.errors, id, Number(r.attempts), r.locked_by],
        );
        if (affected(written) !== 1) continue;
        // Always recorded: the rescuer may not have the task's class to ask.
        await run(`INSERT INTO ${this.tables.events} (task_id, kind, at, worker, attempt, error, started_at) VALUES (?, 'rescued', ${NOW_MS}, ?, ?, ?, ?)`, [
          id,
          this.workerId,
          Number(r.attempts),
          values.lastError,
          row.started_at,
        ]);
        rescued.push({ id, status });
      }
      return rescued;
    });
  }

  /**
   * MySQL has no notifications: a cheap poll of the newest task id tells this worker that another
   * process enqueued, quick after a change and slower while nothing changes (in-process enqueues
   * wake the worker at once through the client's announcements, as on SQLite).
   */
  async listen(onWake: WakeHandler): Promise<void> {
    let top: string | null = null;
    let interval = POLL_MIN_MS;
    const poll = async () => {
      if (this.closed) return;
      try {
        const [row] = await this.dataSource.query<{ top: unknown }[]>(`SELECT MAX(id) AS top FROM ${this.tables.tasks}`);
        const now = row?.top === null || row?.top === undefined ? null : String(row.top);
        if (top !== null && now !== top) {
          interval = POLL_MIN_MS;
          onWake(null);
        } else {
          interval = Math.min(POLL_MAX_MS, interval * 2);
        }
        top = now ?? top ?? "0";
      } catch (err) {
        if (!this.closed) this.logger.warn({ err }, "MySQL change check failed");
      }
      if (!this.closed) {
        this.pollTimer = setTimeout(() => void poll(), interval);
        this.pollTimer.unref();
      }
    };
    await poll();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
  }
}

/** ER_KEY_DOES_NOT_EXITS: an index hint names an index the table does not have. */
const KEY_DOES_NOT_EXIST = 1176;

function errnoOf(err: unknown): number | undefined {
  const e = err as { errno?: unknown; driverError?: { errno?: unknown } } | null;
  const errno = e?.driverError?.errno ?? e?.errno;
  return typeof errno === "number" ? errno : undefined;
}

/** Why a statement failed transiently, or undefined when it did not. */
function transientReason(err: unknown): TransientReason | undefined {
  const errno = errnoOf(err);
  return errno === undefined ? undefined : TRANSIENT_ERRNOS.get(errno);
}

/** The rows an UPDATE or DELETE changed, from TypeORM's raw MySQL result (mysql2's ResultSetHeader). */
function affected(result: unknown): number {
  return Number((result as { affectedRows?: unknown } | null)?.affectedRows ?? 0);
}

/** `` `db`.`ormq_tasks` `` → ["db", "ormq_tasks"]; the database is null when not named. */
function splitTable(table: string): [string | null, string] {
  const parts = [...table.matchAll(/`((?:[^`]|``)*)`/g)].map((m) => m[1].replace(/``/g, "`"));
  return parts.length >= 2 ? [parts[0], parts[1]] : [null, parts[0] ?? table];
}
