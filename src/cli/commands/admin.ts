/** `ormq retry`, `ormq cancel`, `ormq prune`, `ormq migrate`: changes, through the admin API. */
import type { TaskStatus } from "../../../entities/BaseTaskEntity";
import { cancelTask } from "../../tasks/cancel";
import { cancelWorkflow } from "../../admin/cancelWorkflow";
import { FINISHED_STATUSES, TASK_STATUSES } from "../../../entities/status";
import { prune } from "../../maintenance/prune";
import { retryFailed, retryTask } from "../../admin/retry";
import { deleteTasks } from "../../admin/deleteTasks";
import { parseFilterDate, type TaskFilter } from "../../admin/taskFilter";
import { InvalidOptionError } from "../../errors";
import { checkTaskId } from "../../validation";
import { parseDuration } from "../../parse";
import { connect, type ConnectionFlags } from "../connect";
import { CliError } from "../errors";
import { printJson, printRecord, printTable } from "../output";

type Json = { json?: boolean };

function report(flags: Json, result: Record<string, unknown>): void {
  if (flags.json) printJson(result);
  else printRecord(result);
}

/** The filter flags of `retry --failed` and `delete`. */
export type FilterFlags = { type?: string; queue?: string; where?: string[]; createdFrom?: string; createdBefore?: string };

export async function retryCommand(id: string | undefined, flags: ConnectionFlags & Json & FilterFlags & { failed?: boolean }): Promise<void> {
  if ((id === undefined) === !flags.failed) throw new InvalidOptionError("give a task id, or --failed (with --type/--queue/--where to narrow it), not both");
  if (id !== undefined && (flags.type || flags.queue || flags.where || flags.createdFrom || flags.createdBefore)) {
    throw new InvalidOptionError("--type, --queue, --where and --created-* go with --failed, not with a task id");
  }
  const taskId = id === undefined ? undefined : checkTaskId(id);
  const filter = taskFilterOf(flags);
  const conn = await connect(flags, { command: "retry" });
  try {
    if (taskId === undefined) return report(flags, await retryFailed({ dataSource: conn.dataSource, ...filter }));
    const result = await retryTask(taskId, { dataSource: conn.dataSource });
    report(flags, result);
    if (result.outcome === "notFound") throw new CliError(`no task with id ${taskId}`);
    if (result.outcome === "notFailed") throw new CliError(`task ${taskId} is ${result.status}, not failed: nothing to retry`);
    if (result.outcome === "duplicate") {
      throw new CliError(`task ${taskId} stays failed: its unique key is held by unfinished task ${result.standingId ?? "(finished since)"}`);
    }
  } finally {
    await conn.close();
  }
}

export async function cancelCommand(id: string, flags: ConnectionFlags & Json & { reason?: string; workflow?: boolean }): Promise<void> {
  const taskId = checkTaskId(id);
  const conn = await connect(flags, { command: "cancel" });
  try {
    if (flags.workflow) {
      const result = await cancelWorkflow(taskId, { dataSource: conn.dataSource, reason: flags.reason });
      if (!result.found) throw new CliError(`no task with id ${taskId}`);
      report(flags, { ...result });
      return;
    }
    const result = await cancelTask(taskId, { dataSource: conn.dataSource, reason: flags.reason });
    report(flags, result);
    if (result.outcome === "notFound") throw new CliError(`no task with id ${taskId}`);
  } finally {
    await conn.close();
  }
}

export async function pruneCommand(flags: ConnectionFlags & Json & { olderThan?: string; status?: string }): Promise<void> {
  if (!flags.olderThan) throw new InvalidOptionError("--older-than is required (for example --older-than 7d)");
  const olderThan = parseDuration(flags.olderThan, "--older-than");
  const statuses = finishedStatuses(flags.status, "not finished");
  const conn = await connect(flags, { command: "prune" });
  try {
    const result = await prune({ dataSource: conn.dataSource, olderThan, statuses });
    if (flags.json) return printJson(result);
    printRecord({ deleted: result.deleted, "orphaned events deleted": result.orphanedEventsDeleted, "workers deleted": result.workersDeleted, blocked: result.blocked.length });
    if (result.blocked.length > 0) printTable(result.blocked, { id: "blocked task", error: "reason" });
  } finally {
    await conn.close();
  }
}

export async function deleteCommand(flags: ConnectionFlags & Json & FilterFlags & { status?: string }): Promise<void> {
  const statuses = finishedStatuses(flags.status, "not finished: cancel it first");
  const filter = taskFilterOf(flags);
  if (!statuses && Object.keys(filter).length === 0) {
    throw new InvalidOptionError("ormq delete needs a filter (--status, --type, --queue, --where, --created-before); to delete by age use ormq prune");
  }
  const conn = await connect(flags, { command: "delete" });
  try {
    const result = await deleteTasks({ dataSource: conn.dataSource, ...filter, status: statuses });
    if (flags.json) return printJson(result);
    printRecord({ deleted: result.deleted, blocked: result.blocked.length });
    if (result.blocked.length > 0) printTable(result.blocked, { id: "blocked task", error: "reason" });
  } finally {
    await conn.close();
  }
}

/** `--status succeeded,failed`: finished statuses only; `unfinished` says why another is refused. */
function finishedStatuses(raw: string | undefined, unfinished: string): TaskStatus[] | undefined {
  const statuses = raw?.split(",").map((s) => s.trim()) as TaskStatus[] | undefined;
  for (const s of statuses ?? []) {
    if (!FINISHED_STATUSES.includes(s)) {
      throw new InvalidOptionError(`--status takes finished statuses (${FINISHED_STATUSES.join(", ")}), got ${JSON.stringify(s)}${TASK_STATUSES.includes(s) ? ` (${unfinished})` : ""}`);
    }
  }
  return statuses;
}

/**
 * The task filter the flags give: `--where accountId=a1`, `--where attempts>=2` (>=, <=, =; the
 * value as text, compared as the column's type), `--created-from`/`--created-before` (ISO dates).
 */
export function taskFilterOf(flags: FilterFlags): Omit<TaskFilter, "status"> {
  const filter: Omit<TaskFilter, "status"> = {};
  if (flags.type !== undefined) filter.type = flags.type;
  if (flags.queue !== undefined) filter.queue = flags.queue;
  const from = parseFilterDate(flags.createdFrom, "--created-from");
  const before = parseFilterDate(flags.createdBefore, "--created-before");
  if (from) filter.createdFrom = from;
  if (before) filter.createdBefore = before;
  for (const clause of flags.where ?? []) {
    const match = /^([A-Za-z_$][\w$]*)\s*(>=|<=|=)\s*(.*)$/s.exec(clause);
    if (!match) throw new InvalidOptionError(`--where takes PROPERTY=VALUE, PROPERTY>=VALUE or PROPERTY<=VALUE (a column of the --type class), got ${JSON.stringify(clause)}`);
    const [, name, op, value] = match;
    filter.fields ??= {};
    const current = filter.fields[name];
    const range = current !== null && typeof current === "object" && !(current instanceof Date) ? current : {};
    if (op === "=") filter.fields[name] = value;
    else filter.fields[name] = { ...range, [op === ">=" ? "min" : "max"]: value };
  }
  if (filter.fields && !filter.type) throw new InvalidOptionError("--where needs --type: it filters on the columns of that task class");
  return filter;
}

export async function migrateCommand(flags: ConnectionFlags & Json): Promise<void> {
  const conn = await connect(flags, { command: "migrate", mayCreate: true });
  try {
    const applied = await conn.dataSource.runMigrations({ transaction: "each" });
    const runner = conn.dataSource.createQueryRunner();
    const hasTable = await runner.hasTable("ormq_tasks").finally(() => runner.release());
    if (!hasTable) {
      throw new CliError("the migrations ran, but there is no ormq_tasks table: add ...ormqMigrations to the DataSource's `migrations`");
    }
    const names = applied.map((m) => m.name);
    if (flags.json) printJson({ applied: names });
    else process.stdout.write(names.length > 0 ? `applied: ${names.join(", ")}\n` : "up to date\n");
  } finally {
    await conn.close();
  }
}
