/**
 * The task a schedule writes at each tick, made once when the schedule is defined: the row of a
 * task of its class with its data and the class's defaults, checked as save() checks a task, and
 * stored with the schedule as JSON. A scheduler writes that row at each tick with the tick as
 * `run_at`, so any worker can enqueue a schedule's tasks, whether or not it has the class.
 */
import type { DataSource } from "typeorm";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { applyDefaults } from "../enqueue/subscriber";
import { insertedColumns, persistentValue } from "../enqueue/rowValues";
import { setKeyColumns } from "../enqueue/uniqueEnqueue";
import { setFairKey } from "../flow/fairnessSpec";
import { tryTickRows } from "../dialect/scheduleStatements";
import { InvalidOptionError } from "../errors";
import type { TaskType } from "../registry";
import { checkTaskFields, validateTask } from "../validation";

/** A task row to write at each tick. */
export interface TaskTemplate {
  /** Column names, and their values as the driver takes them (JSON values only). */
  columns: string[];
  values: (string | number | boolean | null)[];
  /** The class's `unique.within` in ms: the window column is made from each tick. */
  uniqueWithinMs: number | null;
}

/** Columns set at each tick, not from the template. */
const PER_TICK = new Set(["run_at", "created_at", "updated_at", "schedule_name", "unique_window"]);

/** What a schedule's `data` may set besides the class's own columns. */
const BASE_FIELDS = new Set(["queue", "priority", "maxAttempts", "timeoutMs"]);

/**
 * Makes a schedule's task row: a task of `type` with `data` (the class's own columns, and queue,
 * priority, maxAttempts, timeoutMs), the class's defaults, and the same checks as save(). `where`
 * names the schedule in errors.
 */
export async function taskTemplate(dataSource: DataSource, type: TaskType, data: unknown, where: string, now: number): Promise<TaskTemplate> {
  if (data !== undefined && data !== null && (typeof data !== "object" || Array.isArray(data))) {
    throw new InvalidOptionError(`${where}.data: expected an object of ${type.cls.name}'s column values`);
  }
  const own = new Set(type.metadata.columns.filter((c) => c.target !== BaseTaskEntity && !c.isDiscriminator).map((c) => c.propertyName));
  const task = (type.cls as unknown as { create(): BaseTaskEntity }).create() as BaseTaskEntity & Record<string, unknown>;
  for (const [key, value] of Object.entries(data ?? {})) {
    if (!own.has(key) && !BASE_FIELDS.has(key)) {
      throw new InvalidOptionError(`${where}.data: ${JSON.stringify(key)} is not a column of ${type.cls.name} (nor queue, priority, maxAttempts, timeoutMs)`);
    }
    task[key] = value;
  }
  applyDefaults(task, type.cls, now);
  checkTaskFields(task, type.cls.name);
  await validateTask(task, type.cls, type.key);
  setKeyColumns(task, type.unique, type.key, type.cls.name, now);
  setFairKey(task, type.fairness);
  const columns: string[] = [];
  const values: TaskTemplate["values"] = [];
  for (const column of insertedColumns(type.metadata)) {
    if (PER_TICK.has(column.databaseName)) continue;
    let value = persistentValue(dataSource, type.metadata, column, task);
    if (value instanceof Date) value = value.toISOString();
    if (value !== null && !["string", "number", "boolean"].includes(typeof value)) {
      throw new InvalidOptionError(`${where}.data: ${type.cls.name}.${column.propertyName} is stored as ${typeof value}, which a schedule cannot keep; use save() in a task of your own`);
    }
    if (typeof value === "number" && !Number.isFinite(value)) throw new InvalidOptionError(`${where}.data: ${type.cls.name}.${column.propertyName} is not a finite number`);
    columns.push(column.databaseName);
    values.push(value as string | number | boolean | null);
  }
  const template: TaskTemplate = { columns, values, uniqueWithinMs: type.unique?.withinMs ?? null };
  // What a tick could never write (a NUL byte in PostgreSQL text, a value longer than its column)
  // is refused now: each tick's insert would fail the same way, for ever.
  const trial = tickRow(template, "trial", now, now);
  try {
    await tryTickRows(dataSource, trial.columns, [trial.values]);
  } catch (err) {
    throw new InvalidOptionError(`${where}.data: a task of ${type.cls.name} with this data cannot be written: ${firstLine(err)}`, { cause: err });
  }
  return template;
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split("\n")[0].slice(0, 300);
}

/** A stored template, checked: a row that was tampered with is refused here, not at the INSERT. */
export function parseTemplate(text: string): TaskTemplate {
  const parsed = JSON.parse(text) as Partial<TaskTemplate>;
  const { columns, values, uniqueWithinMs } = parsed ?? {};
  const ok =
    Array.isArray(columns) &&
    Array.isArray(values) &&
    columns.length === values.length &&
    columns.every((c) => typeof c === "string" && /^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(c)) &&
    values.every((v) => v === null || ["string", "number", "boolean"].includes(typeof v)) &&
    columns.includes("type") &&
    (uniqueWithinMs === null || uniqueWithinMs === undefined || (Number.isSafeInteger(uniqueWithinMs) && uniqueWithinMs > 0));
  if (!ok) throw new Error("the stored task is not a list of columns and values");
  return { columns, values, uniqueWithinMs: uniqueWithinMs ?? null };
}

/**
 * The row to write for one tick: the template, with the tick as `run_at` and as the creation time
 * (`created_at`: the one time of a task that nothing moves afterwards, so `ctx.scheduledFor` reads
 * the tick on every attempt, after a retry or a snooze too; see scheduledForOf), `now` as the
 * update time, the schedule's name, and the unique window of the tick (see uniqueKeysOf).
 */
export function tickRow(template: TaskTemplate, schedule: string, tick: number, now: number): { columns: string[]; values: unknown[] } {
  const columns = [...template.columns, "run_at", "created_at", "updated_at", "schedule_name"];
  const values: unknown[] = [...template.values, tick, tick, now, schedule];
  const key = template.values[template.columns.indexOf("unique_key")];
  if (template.uniqueWithinMs !== null && typeof key === "string") {
    columns.push("unique_window");
    values.push(`${key}@${Math.floor(tick / template.uniqueWithinMs) * template.uniqueWithinMs}`);
  }
  return { columns, values };
}
