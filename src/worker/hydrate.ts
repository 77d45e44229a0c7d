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
 * The names are the entity's property and column names from its decorators, written as JSON
 * string literals; the values are never part of the code.
 */
function makePlan(metadata: EntityMetadata, driver: Driver): Hydrator {
  const helpers: unknown[] = [() => metadata.create(undefined, { fromDeserializer: true })];
  const helper = (fn: unknown) => `h${helpers.push(fn) - 1}`;
  const statements = metadata.columns.filter(isRowColumn).map((column) => {
    const read = `v = row[${JSON.stringify(column.databaseName)}];`;
    const kind = baseColumnKind(column);
    if (kind === "same") return `${read} if (v !== undefined) e[${JSON.stringify(column.propertyName)}] = v;`;
    if (kind) return `${read} if (v !== undefined) e[${JSON.stringify(column.propertyName)}] = ${helper(READ[kind])}(v);`;
    // A child class's own column: TypeORM's conversion and setter (embedded columns included).
    const set = (entity: BaseTaskEntity, raw: unknown) => column.setEntityValue(entity, driver.prepareHydratedValue(raw, column));
    return `${read} if (v !== undefined) ${helper(set)}(e, v);`;
  });
  const names = helpers.map((_, i) => `h${i}`);
  const body = `return function hydrate(row) { const e = h0(); let v; ${statements.join(" ")} return e; };`;
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- generated from the decorators' names (see above)
  return new Function(...names, body)(...helpers) as Hydrator;
}

/** Columns of ormq's own that a worker never reads from a claimed row (see ClaimRequest.columns). */
const NOT_READ = new Set(["progress", "progress_message", "unique_window", "result"]);

/** The columns a claim of these types must bring back: what hydrate() sets, for every type. */
export function claimedColumns(metadatas: readonly EntityMetadata[]): string[] {
  const names = new Set<string>();
  for (const metadata of metadatas) {
    for (const column of metadata.columns) if (isRowColumn(column) && !NOT_READ.has(column.databaseName)) names.add(column.databaseName);
  }
  return [...names];
}
