import { DataSource, EntityMetadata, getMetadataArgsStorage } from "typeorm";
import { BaseTaskEntity } from "../entities/BaseTaskEntity";
import { OrmqConfigurationError, TaskDefinitionError } from "./errors";
import { uniqueSpecOf, type UniqueSpec } from "./flow/uniqueSpec";
import { concurrencyLimitOf, rateLimitOf, type ConcurrencyLimitSpec, type RateLimitSpec } from "./flow/limitSpec";
import { scheduleSpecOf, type ScheduleSpec } from "./schedule/scheduleSpec";
import { fairnessOf, type FairnessSpec } from "./flow/fairnessSpec";

/** A concrete or abstract task class: `BaseTaskEntity` or one of its `@ChildEntity` subclasses. */
export type TaskClass<T extends BaseTaskEntity = BaseTaskEntity> = (abstract new () => T) & typeof BaseTaskEntity;

/** A runnable task type: its discriminator key, class and TypeORM metadata. */
export interface TaskType {
  key: string;
  cls: TaskClass;
  metadata: EntityMetadata;
  /** The class's checked `static unique`, or null. */
  unique: UniqueSpec | null;
  /** The class's checked `static concurrencyLimit`, or null. */
  concurrency: ConcurrencyLimitSpec | null;
  /** The class's checked `static rateLimit`, or null. */
  rate: RateLimitSpec | null;
  /** The class's checked `static fairness`, or null. */
  fairness: FairnessSpec | null;
  /** The class's checked `static schedule` and the data of its tasks, or null. */
  schedule: { spec: ScheduleSpec; data: unknown } | null;
}

/**
 * The task classes a DataSource knows, by discriminator key. Built once per DataSource and checked
 * then, so a badly declared class fails at start-up with a message naming it, not mid-run.
 */
export class TaskRegistry {
  /** Every registered task type, by key. Abstract classes (no `run()`) are not here. */
  readonly byKey = new Map<string, TaskType>();

  /** Built once per DataSource, by its client (`ormqFor(dataSource).registry`). */
  constructor(readonly dataSource: DataSource) {
    if (!dataSource.isInitialized) {
      throw new OrmqConfigurationError("the DataSource is not initialized: call dataSource.initialize() first");
    }
    if (!dataSource.hasMetadata(BaseTaskEntity)) {
      throw new OrmqConfigurationError(
        "BaseTaskEntity is not among this DataSource's entities: add ...ormqEntities to its `entities`",
      );
    }
    const explicitKeys = new Map(getMetadataArgsStorage().discriminatorValues.map((d) => [d.target, d.value]));
    const base = dataSource.getMetadata(BaseTaskEntity);
    for (const metadata of allChildren(base)) {
      const cls = metadata.target as TaskClass;
      if (!explicitKeys.has(cls)) {
        throw new TaskDefinitionError(
          `task class ${cls.name} has no discriminator key: declare it as @ChildEntity("some_key"); ` +
            "the class-name default changes on rename or minification and orphans stored tasks",
        );
      }
      if (typeof cls.prototype.run !== "function") continue; // an abstract intermediate class
      checkExecutor(cls);
      const key = String(metadata.discriminatorValue);
      this.byKey.set(key, {
        key,
        cls,
        metadata,
        unique: uniqueSpecOf(cls, metadata),
        concurrency: concurrencyLimitOf(cls, metadata),
        rate: rateLimitOf(cls, metadata),
        fairness: fairnessOf(cls, metadata),
        schedule: classSchedule(cls),
      });
    }
  }

  /**
   * Whether tasks of this type record history (their class's `static history`). A type without a
   * class here (a DataSource opened from a URL, or a class not deployed) records it: what it is
   * cannot be asked.
   */
  recordsHistory(type: string): boolean {
    return this.byKey.get(type)?.cls.history ?? true;
  }

  /**
   * The types a worker for `cls` runs: the class itself and its subclasses; every registered type
   * for `BaseTaskEntity`.
   */
  typesFor(cls: TaskClass): TaskType[] {
    if (cls !== BaseTaskEntity && !this.dataSource.hasMetadata(cls)) {
      throw new OrmqConfigurationError(`task class ${cls.name} is not among this DataSource's entities`);
    }
    const types = [...this.byKey.values()].filter((t) => t.cls === cls || t.cls.prototype instanceof cls);
    if (types.length === 0) {
      throw new TaskDefinitionError(`task class ${cls.name} has no runnable type: it, or a subclass, must define run()`);
    }
    return types;
  }
}

/** Every descendant of a metadata, once each (TypeORM may list grandchildren at either level). */
function allChildren(metadata: EntityMetadata, seen = new Set<EntityMetadata>()): EntityMetadata[] {
  for (const child of metadata.childEntityMetadatas) {
    if (seen.has(child)) continue;
    seen.add(child);
    allChildren(child, seen);
  }
  return [...seen];
}

/** A class's `static schedule`, checked (TaskDefinitionError naming the class), or null. */
function classSchedule(cls: TaskClass): TaskType["schedule"] {
  const option: unknown = cls.schedule;
  if (option === undefined || option === null) return null;
  const spec = scheduleSpecOf(option, `${cls.name}.schedule`, (message) => new TaskDefinitionError(message));
  return { spec, data: typeof option === "object" ? (option as { data?: unknown }).data : undefined };
}

/** The most heap a process task may be given, in MB (1 TiB): a bound, not a recommendation. */
const MAX_MEMORY_LIMIT_MB = 1_048_576;
/** Below this a task process cannot load TypeORM and a DataSource. */
const MIN_MEMORY_LIMIT_MB = 32;

/** A class's `static executor`, `module` and `memoryLimitMb`, checked together. */
export function checkExecutor(cls: TaskClass): void {
  const executor: unknown = cls.executor;
  if (executor !== "async" && executor !== "thread" && executor !== "process") {
    throw new TaskDefinitionError(`task class ${cls.name}: static executor must be "async", "thread" or "process", got ${shown(executor)}`);
  }
  if (executor !== "async" && (typeof cls.module !== "string" || cls.module === "")) {
    throw new TaskDefinitionError(`task class ${cls.name} runs in a ${executor} but does not say where it lives: add \`static module = __filename\``);
  }
  const limit: unknown = cls.memoryLimitMb;
  if (limit === undefined || limit === null) return;
  if (executor !== "process") {
    throw new TaskDefinitionError(`task class ${cls.name}: static memoryLimitMb applies to executor = "process" only (a thread or the event loop shares its heap)`);
  }
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < MIN_MEMORY_LIMIT_MB || limit > MAX_MEMORY_LIMIT_MB) {
    throw new TaskDefinitionError(
      `task class ${cls.name}: static memoryLimitMb must be an integer from ${MIN_MEMORY_LIMIT_MB} to ${MAX_MEMORY_LIMIT_MB} (MB), got ${shown(limit)}`,
    );
  }
}

/** A value in a definition error: strings and numbers as they are, anything else by its type. */
function shown(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.slice(0, 100));
  return typeof value === "number" ? String(value) : typeof value;
}
