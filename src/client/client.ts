/**
 * One OrmqClient per DataSource: everything ormq keeps about a DataSource lives here, made once
 * on first use and found again with one WeakMap lookup (River's Client, Oban's conf). Nothing
 * per-DataSource is kept in module scope anywhere else: two DataSources in one process (a test
 * suite, an application with two databases) never share a registry, a clock, a wake-up or a wait.
 *
 * The user's API does not need it (`save()` and `processN(MyTask, n)` find it from the
 * DataSource); `ormqFor(dataSource)` gives it to those who want a handle: its events and
 * middleware.
 */
import type { DataSource, QueryRunner } from "typeorm";
import type { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { contractOf, type DatabaseContract } from "../dialect";
import { DatabaseClock } from "../dialect/clock";
import { newOrigin } from "../dialect/origin";
import { UniqueGuardState } from "../dialect/uniqueTasks";
import { Announcements } from "./announcements";
import { OrmqConfigurationError } from "../errors";
import { TaskRegistry } from "../registry";
import { ResultWaiter } from "../wait/resultWaiter";
import { ClientEvents } from "./events";
import { MiddlewareStack, type Middleware } from "./middleware";

const clients = new WeakMap<DataSource, OrmqClient>();

export class OrmqClient {
  /** The contract of this DataSource's database (the driver is checked here, once). */
  readonly contract: DatabaseContract;
  /** The tag its NOTIFYs carry, so that its own workers skip what they were woken for in-process. */
  readonly origin = newOrigin();
  /** The database's clock as seen from this process. */
  readonly clock: DatabaseClock;
  /** In-process wake-ups and the coalesced NOTIFY. */
  readonly announcements: Announcements;
  /** Whether the unique guard is known committed. */
  readonly uniqueGuard = new UniqueGuardState();
  /** Typed events: enqueued, claimed, started, the outcomes, rescued, worker started/stopped. */
  readonly events = new ClientEvents();
  /** Enqueue and run middleware, outermost first. */
  readonly middleware = new MiddlewareStack();
  /**
   * Tasks inserted with `dependsOn` in a transaction, by its query runner: their edges are written
   * when it commits (see workflow/dependencies.ts).
   */
  readonly pendingDependencies = new WeakMap<QueryRunner, BaseTaskEntity[]>();
  /** A task with dependencies was enqueued through this client: its workers look for dependents. */
  dependenciesSeen = false;
  private registryBuilt: TaskRegistry | undefined;
  private prepared = false;
  private waiterMade: ResultWaiter | undefined;

  private constructor(readonly dataSource: DataSource) {
    this.contract = contractOf(dataSource);
    this.clock = new DatabaseClock(dataSource);
    this.announcements = new Announcements(dataSource, this.origin);
  }

  /**
   * Readies the DataSource for ormq (the contract's connection guards: on SQLite, TypeORM's single
   * connection made to take turns between concurrent transactions and saves; on PostgreSQL, a
   * connection the server ends kept from crashing the process). Every enqueue, worker start and
   * task start calls it; once done it is a field read. Not done while the connection is busy in
   * a transaction (the guard could not know that transaction's owner): the next call does it.
   */
  prepare(): void {
    if (!this.prepared) this.prepared = this.contract.connection.prepare(this.dataSource);
  }

  /** The client of a DataSource, made on first use. */
  static of(dataSource: DataSource): OrmqClient {
    let client = clients.get(dataSource);
    if (!client) {
      if (!dataSource || typeof dataSource !== "object" || !("options" in dataSource)) {
        throw new OrmqConfigurationError("ormqFor(dataSource): expected a TypeORM DataSource");
      }
      client = new OrmqClient(dataSource);
      clients.set(dataSource, client);
    }
    return client;
  }

  /**
   * The task classes of the DataSource, checked the first time they are asked for (the DataSource
   * must be initialized by then): a badly declared class fails with a message naming it.
   */
  get registry(): TaskRegistry {
    return (this.registryBuilt ??= new TaskRegistry(this.dataSource));
  }

  /** The one poller of every open `waitForResult` on this DataSource, made when the first wait opens. */
  get waiter(): ResultWaiter {
    return (this.waiterMade ??= new ResultWaiter(this.dataSource));
  }

  /** Subscribes to an event; returns the function that unsubscribes. */
  on: ClientEvents["on"] = (event, listener) => this.events.on(event, listener);

  /**
   * Adds middleware (around enqueue, around run) for every enqueue and worker on this DataSource
   * in this process, inside the middleware added before it; returns the function that removes it.
   */
  use(middleware: Middleware): () => void {
    return this.middleware.add(middleware);
  }
}

/**
 * The ormq client of a DataSource: its events (`ormqFor(ds).on("task:failed", …)`) and
 * middleware (`ormqFor(ds).use({ run })`). The same object every time for the same DataSource.
 */
export function ormqFor(dataSource: DataSource): OrmqClient {
  return OrmqClient.of(dataSource);
}
