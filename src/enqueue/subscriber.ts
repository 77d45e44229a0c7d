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
import { recordEvents } from "../dialect/taskWrites";
import { TaskDefinitionError } from "../errors";
import { TaskRegistry } from "../registry";
import { checkTaskFields, validateTask } from "../validation";
import { announceCommitted, announcementOf } from "./announcements";

/**
 * Per open transaction: the queues and types that got tasks (see announcementOf), those already
 * announced, and tasks whose "enqueued" event is still to be written.
 */
interface PendingAnnouncement {
  announcements: Set<string>;
  notified: Set<string>;
  enqueued: { id: string; at: Date }[];
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
    // Before any await: the entity's own check looks for this a microtask later.
    if (event.entity) (event.entity as { [SUBSCRIBER_SAW]?: boolean })[SUBSCRIBER_SAW] = true;
    const cls = event.metadata.target as typeof BaseTaskEntity;
    if (cls === BaseTaskEntity) {
      throw new TaskDefinitionError(
        "a task must be saved as an instance of its task class (SendEmail.create({...}).save()), " +
          "not as a plain object through the BaseTaskEntity repository",
      );
    }
    TaskRegistry.for(event.connection); // a badly declared task class fails here, with its name
    prepareDataSource(event.connection); // (once per DataSource; see there)
    const task = event.entity as unknown as ObjectLiteral;
    applyDefaults(task, cls, await databaseNow(event.connection, event.queryRunner));
    // Throwing here writes nothing; the caller's transaction can roll back cleanly.
    checkTaskFields(task, cls.name);
    await validateTask(task, cls, String(event.metadata.discriminatorValue));
  }

  async afterInsert(event: InsertEvent<BaseTaskEntity>): Promise<void> {
    const task = event.entity as { id?: unknown; queue?: string; createdAt?: Date };
    const announcement = announcementOf(task.queue ?? "default", String(event.metadata.discriminatorValue));
    const runner = event.queryRunner;
    const history = (event.metadata.target as typeof BaseTaskEntity).history && task.id !== undefined && task.id !== null;
    const enqueued = history ? [{ id: String(task.id), at: task.createdAt ?? new Date() }] : [];
    if (!runner.isTransactionActive) {
      // Autocommitted already. An insert() of many rows calls this once per row: gather them and
      // announce once, after the statement.
      if (enqueued.length > 0) await recordEnqueued(runner, enqueued);
      announceSoon(event.connection, announcement);
      return;
    }
    let state = pending.get(runner);
    if (!state) pending.set(runner, (state = { announcements: new Set(), notified: new Set(), enqueued: [] }));
    state.announcements.add(announcement);
    state.enqueued.push(...enqueued);
  }

  async beforeTransactionCommit(event: TransactionCommitEvent): Promise<void> {
    const state = pending.get(event.queryRunner);
    if (!state) return;
    // History first, in the same transaction: the events commit with their tasks.
    const enqueued = state.enqueued.splice(0);
    if (enqueued.length > 0) await recordEnqueued(event.queryRunner, enqueued);
    const fresh = [...state.announcements].filter((a) => !state.notified.has(a));
    if (fresh.length === 0) return;
    // Inside the transaction: PostgreSQL delivers the NOTIFY at commit, or drops it on rollback.
    await announceNewTasks(event.connection, event.queryRunner, fresh);
    for (const a of fresh) state.notified.add(a);
  }

  afterTransactionCommit(event: TransactionCommitEvent): void {
    const state = pending.get(event.queryRunner);
    // A released savepoint is not a commit: wait for the outermost one.
    if (!state || event.queryRunner.isTransactionActive) return;
    pending.delete(event.queryRunner);
    announceCommitted(event.connection, [...state.announcements]);
  }

  afterTransactionRollback(event: TransactionRollbackEvent): void {
    const state = pending.get(event.queryRunner);
    if (!state) return;
    if (!event.queryRunner.isTransactionActive) pending.delete(event.queryRunner);
    // A rolled-back savepoint took its NOTIFY with it: announce again at the next commit.
    else state.notified.clear();
  }
}

/**
 * Announces tasks inserted outside save() (enqueueMany) the way afterInsert announces saved ones:
 * at the commit of `runner`'s transaction when one is open, else soon after. Their "enqueued"
 * events are written by the caller.
 */
export function announceInserted(runner: QueryRunner, announcements: Iterable<string>): void {
  if (!runner.isTransactionActive) {
    for (const announcement of announcements) announceSoon(runner.connection, announcement);
    return;
  }
  let state = pending.get(runner);
  if (!state) pending.set(runner, (state = { announcements: new Set(), notified: new Set(), enqueued: [] }));
  for (const announcement of announcements) state.announcements.add(announcement);
}

/** Writes "enqueued" events. */
async function recordEnqueued(runner: QueryRunner, tasks: { id: string; at: Date }[]): Promise<void> {
  await recordEvents(runner.manager, tasks.map((t) => ({ taskId: t.id, kind: "enqueued" as const, at: t.at, attempt: 0 })));
}

/** Autocommitted new tasks not yet announced (queue and type), per DataSource. */
const autocommitted = new Map<DataSource, Set<string>>();

function announceSoon(dataSource: DataSource, announcement: string): void {
  let waiting = autocommitted.get(dataSource);
  if (waiting) {
    waiting.add(announcement);
    return;
  }
  autocommitted.set(dataSource, (waiting = new Set([announcement])));
  setImmediate(() => {
    autocommitted.delete(dataSource);
    const list = [...waiting];
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
