import { AsyncLocalStorage } from "node:async_hooks";
import type { DataSource, QueryRunner } from "typeorm";
import { onSqliteRunnerMade, resetTransactionDepth, SQLITE_BEGIN } from "../libraryInternals";

/**
 * Makes TypeORM's single better-sqlite3 connection safe for concurrent callers.
 *
 * That driver gives a DataSource exactly one QueryRunner. Two callers in one process (two tasks,
 * say) share it: while one has a transaction open, the other's `save()` sees
 * `isTransactionActive`, skips its own BEGIN and silently joins the first one's transaction (and
 * is rolled back with it), and two `transaction()` calls at once fail outright.
 *
 * Here a top-level transaction belongs to the async context that started it. While it is open:
 * - the owner's queries run inside it, and its nested transactions become savepoints;
 * - any other context's query or transaction waits until it commits or rolls back;
 * - `isTransactionActive` reads true only in the owner's context, so another context's `save()`
 *   starts (and waits for) a transaction of its own rather than joining this one.
 * Transactions begin IMMEDIATE: a deferred BEGIN that reads and later writes fails with
 * SQLITE_BUSY, without waiting, if another connection (ormq's worker connection, another
 * process) wrote in between.
 *
 * Limits: an owner that awaits, inside its transaction, work that needs the connection from
 * another context deadlocks (as it would with any lock); and two transactions started at once from
 * one async context cannot be told apart, so the second nests in the first, as in plain TypeORM.
 */

type Owner = object;
const context = new AsyncLocalStorage<Owner | undefined>();

interface GuardState {
  owner: Owner | null;
  /** TypeORM's own isTransactionActive flag, as it sets it. */
  active: boolean;
  /** Queries outside any transaction that are running now. */
  standalone: number;
  /** The next BEGIN is the top-level one of a guarded transaction: make it IMMEDIATE. */
  immediateNext: boolean;
  waiters: (() => void)[];
}

const guarded = new WeakSet<QueryRunner>();

/** Whether this process guards any connection (then task runs need a context of their own). */
let anyGuarded = false;

const GUARD_WHEN_MADE = Symbol.for("ormq.sqlite.guardWhenMade");

/** Marks ormq's TypeORM subscriber: a DataSource that has it is one ormq works on. */
export const ORMQ_SUBSCRIBER = Symbol.for("ormq.subscriber");

/**
 * Guards the runner of every better-sqlite3 DataSource ormq works on (one with ormq's subscriber)
 * as TypeORM makes it, after the DataSource's metadata and before its first query. A process that
 * only enqueues (a web server whose requests each save a task in a transaction) never reaches a
 * point outside a transaction where guardSqliteConnection could install it, since save() runs in
 * one. Without it, 20 concurrent request transactions there, the first rolling back, all joined
 * the first: 19 reported success and no row was left. And a first save that read before it wrote
 * failed at once with SQLITE_BUSY_SNAPSHOT when another process wrote in between. Once per process.
 */
export function guardSqliteRunnersWhenMade(): void {
  onSqliteRunnerMade(GUARD_WHEN_MADE, (runner, dataSource) => {
    if (dataSource.subscribers.some((s) => (s as { [ORMQ_SUBSCRIBER]?: boolean })[ORMQ_SUBSCRIBER])) guardRunner(runner);
  });
}

/**
 * Installs the guard on a better-sqlite3 DataSource's query runner, once, when it is idle. True
 * once installed; false while the connection is in a transaction. (Usually done already, when the
 * runner was made: see guardSqliteRunnersWhenMade.)
 */
export function guardSqliteConnection(dataSource: DataSource): boolean {
  return guardRunner(dataSource.createQueryRunner()); // the driver's single runner
}

function guardRunner(runner: QueryRunner): boolean {
  if (guarded.has(runner)) return true;
  // Installed mid-transaction, the guard could not know that transaction's owner; the next call
  // (the client's next enqueue or task start) installs it once the connection is idle.
  if (runner.isTransactionActive) return false;
  guarded.add(runner);
  anyGuarded = true;

  const state: GuardState = { owner: null, active: runner.isTransactionActive, standalone: 0, immediateNext: false, waiters: [] };
  const wakeAll = () => {
    const waiters = state.waiters;
    state.waiters = [];
    for (const wake of waiters) wake();
  };
  // Callers loop on `while (!condition) await nextChange()` and act in the same synchronous
  // segment as their last check: an `await` between the check and the act would let another
  // caller pass the same check.
  const nextChange = () => new Promise<void>((resolve) => state.waiters.push(resolve));
  const isOwner = () => state.owner !== null && context.getStore() === state.owner;
  const release = () => {
    state.owner = null;
    wakeAll();
  };

  Object.defineProperty(runner, "isTransactionActive", {
    configurable: true,
    enumerable: true,
    get: () => state.active && isOwner(),
    set: (value: boolean) => {
      state.active = value;
    },
  });

  const query = runner.query.bind(runner) as (sql: string, ...rest: unknown[]) => Promise<unknown>;
  runner.query = (async (sql: string, ...rest: unknown[]) => {
    if (isOwner()) {
      if (state.immediateNext && sql === SQLITE_BEGIN) {
        state.immediateNext = false;
        sql = "BEGIN IMMEDIATE TRANSACTION";
      }
      return query(sql, ...rest);
    }
    while (state.owner !== null) await nextChange();
    state.standalone++;
    try {
      return await query(sql, ...rest);
    } finally {
      if (--state.standalone === 0) wakeAll();
    }
  }) as QueryRunner["query"];

  const startTransaction = runner.startTransaction.bind(runner);
  // Not async on purpose: the caller's context must become the owner before its first await, so
  // that the code it runs inside the transaction carries the owner token.
  runner.startTransaction = ((isolationLevel?: Parameters<QueryRunner["startTransaction"]>[0]) => {
    if (isOwner()) return startTransaction(isolationLevel); // nested: a savepoint
    const owner: Owner = {};
    context.enterWith(owner);
    return (async () => {
      while (state.owner !== null || state.standalone > 0) await nextChange();
      state.owner = owner;
      state.immediateNext = true;
      try {
        await startTransaction(isolationLevel);
      } catch (err) {
        // BEGIN failed (busy past the timeout, say): TypeORM leaves its flag set; undo it.
        state.immediateNext = false;
        state.active = false;
        resetTransactionDepth(runner);
        release();
        throw err;
      }
    })();
  });

  for (const name of ["commitTransaction", "rollbackTransaction"] as const) {
    const end = runner[name].bind(runner);
    runner[name] = async () => {
      try {
        await end();
      } finally {
        // The outermost COMMIT or ROLLBACK clears TypeORM's flag: the connection is free again.
        if (!state.active && isOwner()) release();
      }
    };
  }
  return true;
}

/**
 * Runs `fn` outside any transaction owner's context: a task's run() starts here, so it never
 * inherits the context of whoever started the worker.
 */
export function outsideTransactions<T>(fn: () => T): T;
/** As above, calling `fn(arg)`: a module-level function and its argument, no closure per call. */
export function outsideTransactions<A, T>(fn: (arg: A) => T, arg: A): T;
export function outsideTransactions<A, T>(fn: (arg?: A) => T, arg?: A): T {
  // Only a guarded connection reads the context. Without one (PostgreSQL) there is nothing to
  // leave, and the first AsyncLocalStorage.run() would turn on promise hooks for the whole
  // process: every promise of every task would pay for them.
  if (!anyGuarded) return fn(arg);
  // A fresh store each time: run() with the store already current skips restoring it afterwards,
  // and an enterWith() inside would then leak into the caller's context.
  return context.run({ outside: true }, fn, arg);
}

/** The last transaction queued per file (see inFileTurn). */
const turns = new Map<string, Promise<unknown>>();

/**
 * Runs `fn` after every earlier call for the same SQLite file in this process has settled: for
 * transactions opened through TypeORM (a schedule's tick write). Several DataSources on one file
 * in one process (tests do this; so may an application) would otherwise deadlock for the busy
 * timeout: a second connection's BEGIN IMMEDIATE waits synchronously, so the first cannot finish
 * its transaction meanwhile. Across processes the wait is harmless and SQLite's lock orders them.
 */
export function inFileTurn<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const run = (turns.get(file) ?? Promise.resolve()).catch(() => undefined).then(fn);
  const settled = run.catch(() => undefined);
  turns.set(file, settled);
  void settled.then(() => turns.get(file) === settled && turns.delete(file));
  return run;
}
