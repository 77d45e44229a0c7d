/** `ormq submit <type> --data '{…}'`: enqueues one task, validated like any insert. */
import { getMetadataArgsStorage } from "typeorm";
import { BaseTaskEntity } from "../../../entities/BaseTaskEntity";
import { InvalidOptionError } from "../../errors";
import { checkQueue } from "../../validation";
import { parseDuration, parseInteger } from "../../parse";
import { connect, type ConnectionFlags } from "../connect";
import { printJson, printRecord } from "../output";
import { checkTaskData, missingRequired } from "../taskFields";
import { ormqFor } from "../../client/client";

/** The bound of --priority (as checkPriority) and --max-attempts: what a 32-bit `integer` column holds. */
const INT32_MAX = 2 ** 31 - 1;

export interface SubmitFlags extends ConnectionFlags {
  data?: string;
  queue?: string;
  delay?: string;
  priority?: string;
  maxAttempts?: string;
  json?: boolean;
}

export async function submitCommand(typeKey: string, flags: SubmitFlags): Promise<void> {
  let data: unknown = {};
  if (flags.data !== undefined) {
    try {
      data = JSON.parse(flags.data);
    } catch (err) {
      throw new InvalidOptionError(`--data is not valid JSON: ${(err as Error).message}`);
    }
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) throw new InvalidOptionError("--data must be a JSON object of the task's fields");
  // Every flag is checked before the database is opened; the fields need the class's columns.
  const priority = flags.priority === undefined ? undefined : parseInteger(flags.priority, "--priority", -INT32_MAX, INT32_MAX);
  const delayMs = flags.delay === undefined ? undefined : parseDuration(flags.delay, "--delay");
  const maxAttempts = flags.maxAttempts === undefined ? undefined : parseInteger(flags.maxAttempts, "--max-attempts", 1, INT32_MAX);
  if (flags.queue !== undefined) checkQueue(flags.queue, "--queue");
  const conn = await connect(flags, { command: "submit", needsClasses: true });
  try {
    const registry = ormqFor(conn.dataSource).registry;
    const type = registry.byKey.get(typeKey);
    if (!type) throw new InvalidOptionError(`unknown task type ${JSON.stringify(typeKey)}; known: ${[...registry.byKey.keys()].join(", ") || "none"}`);
    // Only the task's own columns come from --data; ormq's (status, attempts, …) are not the caller's to set.
    const fields = ownFields(type.cls);
    const unknown = Object.keys(data).filter((k) => !fields.includes(k));
    if (unknown.length > 0) {
      throw new InvalidOptionError(`${typeKey} has no field ${unknown.map((k) => JSON.stringify(k)).join(", ")}; its fields: ${fields.join(", ") || "none"}`);
    }
    const columns = conn.dataSource.getMetadata(type.cls).columns.filter((c) => fields.includes(c.propertyName));
    const values = checkTaskData(typeKey, data as Record<string, unknown>, columns);
    const repo = conn.dataSource.getRepository(type.cls);
    const task: BaseTaskEntity = repo.create(values);
    const missing = missingRequired(task, columns);
    if (missing) throw new InvalidOptionError(`${typeKey} needs --data field ${JSON.stringify(missing.propertyName)}: its column is not nullable and has no default`);
    if (flags.queue !== undefined) task.onQueue(flags.queue);
    if (priority !== undefined) task.withPriority(priority);
    if (maxAttempts !== undefined) task.withMaxAttempts(maxAttempts);
    if (delayMs !== undefined) task.delay(delayMs);
    await repo.save(task);
    const result = { id: task.id, type: typeKey, queue: task.queue, priority: task.priority, runAt: task.runAt };
    if (flags.json) printJson(result);
    else printRecord(result);
  } finally {
    await conn.close();
  }
}

/**
 * The columns a task class and its ancestors below BaseTaskEntity declare. (With single-table
 * inheritance every child's metadata lists every child's columns, and two children declaring the
 * same property share one column: the declarations are what say which are this class's.)
 */
function ownFields(cls: object): string[] {
  const chain = new Set<unknown>();
  for (let c: object | null = cls; c && c !== BaseTaskEntity; c = Object.getPrototypeOf(c) as object | null) chain.add(c);
  return [...new Set(getMetadataArgsStorage().columns.filter((c) => chain.has(c.target)).map((c) => c.propertyName))];
}
