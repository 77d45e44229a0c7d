import {
  DataSource,
  EntitySubscriberInterface,
  EventSubscriber,
  InsertEvent,
  ObjectLiteral,
  QueryRunner,
  TransactionCommitEvent,
  TransactionRollbackEvent,
} from "typeorm";
import { BaseTaskEntity, DELAY_MS, SUBSCRIBER_SAW } from "../../entities/BaseTaskEntity";
import { databaseNow } from "../dialect/clock";
import { announceNewTasks, prepareDataSource } from "../dialect";
import { TaskDefinitionError } from "../errors";
import { TaskRegistry } from "../registry";
import { checkTaskFields, validateTask } from "../validation";
import { announceCommitted, announcementOf } from "./announcements";
import { markUnique, settleUnique } from "./uniqueEnqueue";

/** Per open transaction: the queues and types that got tasks (see announcementOf). */
const pending = new WeakMap<QueryRunner, Set<string>>();

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
 */
@EventSubscriber()
export class TaskSubscriber implements EntitySubscriberInterface<BaseTaskEntity> {
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
    const registry = TaskRegistry.for(event.connection); // a badly declared task class fails here, with its name
    prepareDataSource(event.connection); // (once per DataSource; see there)
    const task = event.entity as unknown as ObjectLiteral;
    const type = String(event.metadata.discriminatorValue);
    const now = await databaseNow(event.connection, event.queryRunner);
    applyDefaults(task, cls, now);
    // Throwing here writes nothing; the caller's transaction can roll back cleanly.
    checkTaskFields(task, cls.name);
    await validateTask(task, cls, type);
    await markUnique(event.manager, task, registry.byKey.get(type)?.unique ?? null, type, cls.name, now);
  }

  async afterInsert(event: InsertEvent<BaseTaskEntity>): Promise<void> {
    const task = event.entity as unknown as ObjectLiteral;
    const type = String(event.metadata.discriminatorValue);
    const spec = TaskRegistry.for(event.connection).byKey.get(type)?.unique ?? null;
    // A duplicate skipped: nothing new to announce.
    if ((await settleUnique(event.manager, task, spec, event.metadata)) === "skipped") return;
    announceInserted(event.queryRunner, [announcementOf(task.queue ?? "default", type)]);
  }

  afterTransactionCommit(event: TransactionCommitEvent): void {
    const announcements = pending.get(event.queryRunner);
    // A released savepoint is not a commit: wait for the outermost one.
    if (!announcements || event.queryRunner.isTransactionActive) return;
    pending.delete(event.queryRunner);
    for (const announcement of announcements) announceSoon(event.connection, announcement);
  }

  afterTransactionRollback(event: TransactionRollbackEvent): void {
    // A rolled-back savepoint keeps what it announced: at worst a wake-up that finds nothing.
    if (!event.queryRunner.isTransactionActive) pending.delete(event.queryRunner);
  }
}

/**
 * Announces inserted tasks: at the commit of `runner`'s transaction when one is open, else soon
 * after (an insert() of many rows calls afterInsert once per row: they are announced once).
 */
export function announceInserted(runner: QueryRunner, announcements: Iterable<string>): void {
  if (!runner.isTransactionActive) {
    for (const announcement of announcements) announceSoon(runner.connection, announcement);
    return;
  }
  let waiting = pending.get(runner);
  if (!waiting) pending.set(runner, (waiting = new Set()));
  for (const announcement of announcements) waiting.add(announcement);
}

/** Committed new tasks whose NOTIFY is not sent yet (queue and type), per DataSource. */
const unsent = new Map<DataSource, Set<string>>();

/**
 * Wakes this process's workers at once, and other processes' with one NOTIFY for what was
 * committed in this turn of the event loop (a multi-row insert() announces each row).
 */
function announceSoon(dataSource: DataSource, announcement: string): void {
  announceCommitted(dataSource, [announcement]);
  let waiting = unsent.get(dataSource);
  if (waiting) {
    waiting.add(announcement);
    return;
  }
  unsent.set(dataSource, (waiting = new Set([announcement])));
  setImmediate(() => {
    unsent.delete(dataSource);
    announceNewTasks(dataSource, [...waiting]).catch(() => {
      // Only a wake-up was lost: workers still find the tasks by polling.
    });
  });
}

/** ormq's subscribers, to spread into a DataSource's `subscribers`. */
export const ormqSubscribers = [TaskSubscriber];

/**
 * Precedence: a value set on the instance before save(), then the class's static (a subclass
 * overrides its parent), then ormq's default (the statics on BaseTaskEntity).
 */
export function applyDefaults(entity: ObjectLiteral, cls: typeof BaseTaskEntity, now: number): void {
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
