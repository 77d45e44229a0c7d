import {
  type QueryRunner,
  EntitySubscriberInterface,
  EventSubscriber,
  InsertEvent,
  ObjectLiteral,
  TransactionCommitEvent,
  TransactionRollbackEvent,
} from "typeorm";
import { BaseTaskEntity, DELAY_MS, SUBSCRIBER_SAW } from "../../entities/BaseTaskEntity";
import { ormqFor } from "../client/client";
import type { MiddlewareStack } from "../client/middleware";
import { DependencyError, TaskDefinitionError } from "../errors";
import type { OrmqClient } from "../client/client";
import { ORMQ_SUBSCRIBER } from "../dialect";
import { transactionDepthOf } from "../dialect/libraryInternals";
import { hasDependencies, writeDependencies } from "../workflow/dependencies";
import { checkTaskFields, validateTask } from "../validation";
import { announcementOf } from "../client/announcements";
import { markUnique, settleUnique } from "./uniqueEnqueue";
import { setFairKey } from "../flow/fairnessSpec";
import { installOrmq } from "../setup";

/**
 * Applies a task class's defaults at insert and announces new tasks once they are committed.
 * Register it with `subscribers: [...ormqSubscribers]`.
 *
 * Defaults are applied here rather than in an entity listener because a subscriber also sees
 * `insert()` and plain objects, which entity listeners skip.
 *
 * What an enqueue writes is the task's row and nothing else: its "enqueued" history is that row's
 * `created_at` (see showTask), and the wake-up goes out after the commit, on another connection.
 * An autocommitted save() on PostgreSQL is then three statements (BEGIN, INSERT, COMMIT) where an
 * event row and a NOTIFY inside the transaction made it five, and the enqueuer does not wait for
 * the wake-up. A wake-up lost to a crash right after a commit costs a poll interval, no task.
 *
 * Everything it keeps about a DataSource (registry, clock, announcements) is its client's.
 */
@EventSubscriber()
export class TaskSubscriber implements EntitySubscriberInterface<BaseTaskEntity> {
  /** A DataSource with this subscriber is one ormq works on (SQLite: its connection is guarded). */
  readonly [ORMQ_SUBSCRIBER] = true;

  constructor() {
    installOrmq(); // TypeORM builds its subscribers first when it builds a DataSource
  }

  listenTo() {
    return BaseTaskEntity;
  }

  async beforeInsert(event: InsertEvent<BaseTaskEntity>): Promise<void> {
    // Before any await: the entity's own check looks for this a microtask later.
    if (event.entity) (event.entity as { [SUBSCRIBER_SAW]?: boolean })[SUBSCRIBER_SAW] = true;
    const cls = event.metadata.target as typeof BaseTaskEntity;
    if (cls === BaseTaskEntity) {
      throw new TaskDefinitionError(
        "a task must be saved as an instance of its task class (SendEmail.create({...}).save()), " +
          "not as a plain object through the BaseTaskEntity repository",
      );
    }
    const client = ormqFor(event.connection);
    const registry = client.registry; // a badly declared task class fails here, with its name
    client.prepare();
    const task = event.entity as unknown as ObjectLiteral;
    const type = String(event.metadata.discriminatorValue);
    const now = await client.clock.now(event.queryRunner);
    // Throwing here writes nothing; the caller's transaction can roll back cleanly.
    await prepareForInsert(client.middleware, task, cls, type, now);
    const known = registry.byKey.get(type);
    setFairKey(task, known?.fairness ?? null);
    // After the middleware: the key is made of the columns as they will be written.
    await markUnique(event.manager, task, known?.unique ?? null, type, cls.name, now);
  }

  async afterInsert(event: InsertEvent<BaseTaskEntity>): Promise<void> {
    const task = event.entity as unknown as ObjectLiteral;
    const type = String(event.metadata.discriminatorValue);
    const client = ormqFor(event.connection);
    const spec = client.registry.byKey.get(type)?.unique ?? null;
    // A duplicate skipped: nothing new to announce.
    if ((await settleUnique(event.manager, task, spec, event.metadata)) === "skipped") return;
    noteDependencies(client, event.queryRunner, task as BaseTaskEntity);
    const queue = String(task.queue ?? "default");
    client.announcements.inserted(event.queryRunner, [announcementOf(queue, type)]);
    if (client.events.listening("task:enqueued")) client.events.emit("task:enqueued", { taskId: String(task.id), type, queue });
  }

  async beforeTransactionCommit(event: TransactionCommitEvent): Promise<void> {
    // Only the outermost commit: a savepoint's release is not one (its tasks wait for the outer).
    if (transactionDepthOf(event.queryRunner) > 1) return;
    const client = ormqFor(event.connection);
    const tasks = client.pendingDependencies.get(event.queryRunner);
    if (!tasks) return;
    client.pendingDependencies.delete(event.queryRunner);
    // A refusal (a missing dependency, a cycle) throws here, and the transaction rolls back.
    await writeDependencies(client, event.queryRunner.manager, tasks);
  }

  afterTransactionCommit(event: TransactionCommitEvent): void {
    // A released savepoint is not a commit: the announcements wait for the outermost one.
    ormqFor(event.connection).announcements.committed(event.queryRunner);
  }

  afterTransactionRollback(event: TransactionRollbackEvent): void {
    const client = ormqFor(event.connection);
    client.announcements.rolledBack(event.queryRunner);
    if (!event.queryRunner.isTransactionActive) client.pendingDependencies.delete(event.queryRunner);
  }
}

/**
 * Keeps a task inserted with dependencies for its transaction's commit, where its edges are
 * written (tasks saved together may depend on each other). Outside a transaction there is no
 * commit to wait for: save() opens one for such a task (see tasks/saveOptions.ts).
 */
export function noteDependencies(client: OrmqClient, runner: QueryRunner | undefined, task: BaseTaskEntity): void {
  if (task.status !== "waiting" || !task.dependsOn || task.dependsOn.length === 0) return;
  if (!runner?.isTransactionActive) {
    throw new DependencyError(`${task.constructor.name}: a task with dependsOn is enqueued in a transaction (its edges are written at the commit): use save(), enqueueMany or a transaction's manager`);
  }
  const list = client.pendingDependencies.get(runner);
  if (list) list.push(task);
  else client.pendingDependencies.set(runner, [task]);
}

/** ormq's subscribers, to spread into a DataSource's `subscribers`. */
export const ormqSubscribers = [TaskSubscriber];

/**
 * A task about to be inserted: ormq's defaults and checks, inside the client's enqueue
 * middleware when there is any (save() and enqueueMany alike). Not async: without middleware
 * (nearly always) it costs no closure and no extra await per task; a synchronous throw reaches
 * the awaiting caller as a rejection would.
 */
export function prepareForInsert(middleware: MiddlewareStack, task: ObjectLiteral, cls: typeof BaseTaskEntity, type: string, now: number): Promise<void> {
  return middleware.hasEnqueue ? middleware.enqueue(task as BaseTaskEntity, () => defaultsAndChecks(task, cls, type, now)) : defaultsAndChecks(task, cls, type, now);
}

function defaultsAndChecks(task: ObjectLiteral, cls: typeof BaseTaskEntity, type: string, now: number): Promise<void> {
  applyDefaults(task, cls, now);
  checkTaskFields(task, cls.name);
  return validateTask(task, cls, type);
}

/**
 * Precedence: a value set on the instance before save(), then the class's static (a subclass
 * overrides its parent), then ormq's default (the statics on BaseTaskEntity).
 */
export function applyDefaults(entity: ObjectLiteral, cls: typeof BaseTaskEntity, now: number): void {
  // A task with dependencies waits for them: never claimed until they have succeeded.
  // (`waiting` is ormq's to set: a task given it without dependencies would wait for ever.)
  if (hasDependencies(entity, cls.name)) entity.status = "waiting";
  else if (entity.status === "waiting") entity.status = "pending";
  entity.queue ??= cls.queue;
  entity.priority ??= cls.priority;
  entity.maxAttempts ??= cls.maxAttempts;
  entity.timeoutMs ??= cls.timeoutMs ?? null;
  entity.status ??= "pending";
  entity.attempts ??= 0;
  const delay = (entity as { [DELAY_MS]?: number })[DELAY_MS];
  entity.runAt ??= new Date(now + (delay ?? 0));
  entity.createdAt ??= new Date(now);
  entity.updatedAt ??= new Date(now);
  entity.errors ??= [];
}
