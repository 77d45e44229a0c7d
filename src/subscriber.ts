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
import { BaseTaskEntity, DELAY_MS } from "../entities/BaseTaskEntity";
import { databaseNow } from "./clock";
import { announceNewTasks } from "./dialect";
import { TaskDefinitionError } from "./errors";
import { TaskRegistry } from "./registry";
import { checkTaskFields, validateTask } from "./validation";
import { announceCommitted } from "./wakeup";

/** Queues that got tasks in the transaction open on a query runner, and those already announced. */
interface PendingAnnouncement {
  queues: Set<string>;
  notified: Set<string>;
}
const pending = new WeakMap<QueryRunner, PendingAnnouncement>();

/**
 * Applies a task class's defaults at insert and announces new tasks once per transaction, when it
 * commits. Register it with `subscribers: [...ormqSubscribers]`.
 *
 * Defaults are applied here rather than in an entity listener because a subscriber also sees
 * `insert()` and plain objects, which entity listeners skip.
 */
@EventSubscriber()
export class TaskSubscriber implements EntitySubscriberInterface<BaseTaskEntity> {
  listenTo() {
    return BaseTaskEntity;
  }

  async beforeInsert(event: InsertEvent<BaseTaskEntity>): Promise<void> {
    const cls = event.metadata.target as typeof BaseTaskEntity;
    if (cls === BaseTaskEntity) {
      throw new TaskDefinitionError(
        "a task must be saved as an instance of its task class (SendEmail.create({...}).save()), " +
          "not as a plain object through the BaseTaskEntity repository",
      );
    }
    TaskRegistry.for(event.connection); // a badly declared task class fails here, with its name
    const task = event.entity as unknown as ObjectLiteral;
    applyDefaults(task, cls, await databaseNow(event.connection, event.queryRunner));
    // Throwing here writes nothing; the caller's transaction can roll back cleanly.
    checkTaskFields(task, cls.name);
    await validateTask(task, cls, String(event.metadata.discriminatorValue));
  }

  async afterInsert(event: InsertEvent<BaseTaskEntity>): Promise<void> {
    const queue = (event.entity as { queue?: string }).queue ?? "default";
    const runner = event.queryRunner;
    if (!runner.isTransactionActive) {
      // Autocommitted already. An insert() of many rows calls this once per row: gather them and
      // announce once, after the statement.
      announceSoon(event.connection, queue);
      return;
    }
    let state = pending.get(runner);
    if (!state) pending.set(runner, (state = { queues: new Set(), notified: new Set() }));
    state.queues.add(queue);
  }

  async beforeTransactionCommit(event: TransactionCommitEvent): Promise<void> {
    const state = pending.get(event.queryRunner);
    if (!state) return;
    const fresh = [...state.queues].filter((q) => !state.notified.has(q));
    if (fresh.length === 0) return;
    // Inside the transaction: PostgreSQL delivers the NOTIFY at commit, or drops it on rollback.
    await announceNewTasks(event.connection, event.queryRunner, fresh);
    for (const q of fresh) state.notified.add(q);
  }

  afterTransactionCommit(event: TransactionCommitEvent): void {
    const state = pending.get(event.queryRunner);
    // A released savepoint is not a commit: wait for the outermost one.
    if (!state || event.queryRunner.isTransactionActive) return;
    pending.delete(event.queryRunner);
    announceCommitted(event.connection, [...state.queues]);
  }

  afterTransactionRollback(event: TransactionRollbackEvent): void {
    const state = pending.get(event.queryRunner);
    if (!state) return;
    if (!event.queryRunner.isTransactionActive) pending.delete(event.queryRunner);
    // A rolled-back savepoint took its NOTIFY with it: announce again at the next commit.
    else state.notified.clear();
  }
}

/** Queues with autocommitted new tasks not yet announced, per DataSource. */
const autocommitted = new Map<DataSource, Set<string>>();

function announceSoon(dataSource: DataSource, queue: string): void {
  let queues = autocommitted.get(dataSource);
  if (queues) {
    queues.add(queue);
    return;
  }
  autocommitted.set(dataSource, (queues = new Set([queue])));
  setImmediate(() => {
    autocommitted.delete(dataSource);
    const list = [...queues];
    announceCommitted(dataSource, list);
    announceNewTasks(dataSource, null, list).catch(() => {
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
function applyDefaults(entity: ObjectLiteral, cls: typeof BaseTaskEntity, now: number): void {
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
