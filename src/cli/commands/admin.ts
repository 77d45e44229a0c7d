/** `ormq retry`, `ormq cancel`, `ormq prune`, `ormq migrate`: changes, through the admin API. */
import type { TaskStatus } from "../../../entities/BaseTaskEntity";
import { cancelTask } from "../../admin/cancel";
import { TASK_STATUSES } from "../../../entities/status";
import { prune } from "../../admin/prune";
import { retryFailed, retryTask } from "../../admin/retry";
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

export async function retryCommand(id: string | undefined, flags: ConnectionFlags & Json & { failed?: boolean; type?: string; queue?: string }): Promise<void> {
  if ((id === undefined) === !flags.failed) throw new InvalidOptionError("give a task id, or --failed (with --type/--queue to narrow it), not both");
  if (id !== undefined && (flags.type || flags.queue)) throw new InvalidOptionError("--type and --queue go with --failed, not with a task id");
  const taskId = id === undefined ? undefined : checkTaskId(id);
  const conn = await connect(flags, { command: "retry" });
  try {
    if (taskId === undefined) return report(flags, await retryFailed({ dataSource: conn.dataSource, type: flags.type, queue: flags.queue }));
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

export async function cancelCommand(id: string, flags: ConnectionFlags & Json & { reason?: string }): Promise<void> {
  const taskId = checkTaskId(id);
  const conn = await connect(flags, { command: "cancel" });
  try {
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
  const statuses = flags.status?.split(",").map((s) => s.trim()) as TaskStatus[] | undefined;
  for (const s of statuses ?? []) {
    if (!["succeeded", "failed", "cancelled"].includes(s)) {
      throw new InvalidOptionError(`--status takes finished statuses (succeeded, failed, cancelled), got ${JSON.stringify(s)}${TASK_STATUSES.includes(s) ? " (not finished)" : ""}`);
    }
  }
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
