import type { Driver, EntityMetadata } from "typeorm";
import type { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { baseColumnKind, isRowColumn, READ } from "../baseColumns";
import type { TaskRow } from "../dialect";

type Hydrator = (row: TaskRow) => BaseTaskEntity;

const plans = new WeakMap<EntityMetadata, Hydrator>();

/**
 * Turns a claimed row into an instance of its own task class, the way TypeORM loads an entity.
 * The plan for each class is made once: BaseTaskEntity's columns are converted directly (see
 * baseColumns.ts), a child class's own columns through TypeORM (driver conversion and
 * transformer), so they load exactly as a find() loads them.
 */
export function hydrate(metadata: EntityMetadata, driver: Driver, row: TaskRow): BaseTaskEntity {
  let plan = plans.get(metadata);
  if (!plan) {
    plan = makePlan(metadata, driver);
    plans.set(metadata, plan);
  }
  return plan(row);
}

/**
 * The class's hydrator, written as one function with a statement per column. Why generated: one
 * loop (or one shared setter) storing `entity[name]` for every column is a store site that sees
 * 27 names, which V8 makes megamorphic: each store went through its runtime, about 3 µs a row, a
 * twentieth of a no-op task's CPU in the worker. Here each store has a constant name of its own.
 * What is written into the code: the column names (from the decorators or the naming strategy)
 * and BaseTaskEntity's own property names, each as a JSON string literal; a child class's own
 * columns are set through TypeORM, by a helper. The values are never part of the code. Where the
 * runtime refuses to make code from strings, the same steps run as a loop.
 */
function makePlan(metadata: EntityMetadata, driver: Driver): Hydrator {
  const create = () => metadata.create(undefined, { fromDeserializer: true }) as BaseTaskEntity;
  const steps = metadata.columns.filter(isRowColumn).map((column) => {
    const kind = baseColumnKind(column);
    const set: (entity: BaseTaskEntity, raw: unknown) => void = kind
      ? (entity, raw) => ((entity as unknown as Record<string, unknown>)[column.propertyName] = READ[kind](raw))
      : // A child class's own column: TypeORM's conversion and setter (embedded columns included).
        (entity, raw) => column.setEntityValue(entity, driver.prepareHydratedValue(raw, column));
    return { column, kind, set };
  });
  try {
    const helpers: unknown[] = [create];
    const helper = (fn: unknown) => `h${helpers.push(fn) - 1}`;
    const statements = steps.map(({ column, kind, set }) => {
      const read = `v = row[${JSON.stringify(column.databaseName)}];`;
      const property = JSON.stringify(column.propertyName);
      if (kind === "same") return `${read} if (v !== undefined) e[${property}] = v;`;
      if (kind) return `${read} if (v !== undefined) e[${property}] = ${helper(READ[kind])}(v);`;
      return `${read} if (v !== undefined) ${helper(set)}(e, v);`;
    });
    const names = helpers.map((_, i) => `h${i}`);
    const body = `"use strict"; return function hydrate(row) { const e = h0(); let v; ${statements.join(" ")} return e; };`;
    // eslint-disable-next-line @typescript-eslint/no-implied-eval -- made from column names only (see above)
    return new Function(...names, body)(...helpers) as Hydrator;
  } catch {
    // Code generation disallowed (node --disallow-code-generation-from-strings, a locked-down runtime).
    return (row) => {
      const entity = create();
      for (const { column, set } of steps) {
        const raw = row[column.databaseName];
        if (raw !== undefined) set(entity, raw);
      }
      return entity;
    };
  }
}

/**
 * Columns of ormq's own that a worker never reads from a claimed row (see ClaimRequest.columns):
 * those it has no use for, and those every claim writes the same way on every database, which
 * `hydrateClaimed` sets instead. Each column a claim returns costs the worker a string and its
 * parse per row, tens of thousands of rows a second.
 */
const NOT_READ = new Set(["progress", "progress_message", "unique_window", "result", "locked_by", "locked_until", "updated_at"]);

/** What a claim holds the same for each row it marks: its worker and the lease it took. */
export interface ClaimedBy {
  readonly workerId: string;
  readonly leaseMs: number;
}

/**
 * A claimed row as its task, with what every claim wrote that the claim does not read back (see
 * NOT_READ): `lockedBy` the worker, `updatedAt` the claim's now (its `startedAt`), `lockedUntil`
 * that plus the lease, as each dialect's claim writes them.
 */
export function hydrateClaimed(metadata: EntityMetadata, driver: Driver, row: TaskRow, by: ClaimedBy): BaseTaskEntity {
  const task = hydrate(metadata, driver, row);
  task.lockedBy = by.workerId;
  const started = task.startedAt;
  if (started instanceof Date) {
    const at = started.getTime();
    task.updatedAt = new Date(at);
    task.lockedUntil = new Date(at + by.leaseMs);
  }
  return task;
}

/** A claimed row as a thread or task process hydrates it: with the columns the claim did not read back. */
export function fullClaimedRow(row: TaskRow, task: BaseTaskEntity): TaskRow {
  return { ...row, locked_by: task.lockedBy, updated_at: task.updatedAt?.getTime() ?? null, locked_until: task.lockedUntil?.getTime() ?? null };
}

/** The columns a claim of these types must bring back: what hydrate() sets, for every type. */
export function claimedColumns(metadatas: readonly EntityMetadata[]): string[] {
  const names = new Set<string>();
  for (const metadata of metadatas) {
    for (const column of metadata.columns) if (isRowColumn(column) && !NOT_READ.has(column.databaseName)) names.add(column.databaseName);
  }
  return [...names];
}
