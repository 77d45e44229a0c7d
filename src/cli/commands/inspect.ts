/** `ormq stats`, `ormq list`, `ormq show`: read-only views, through the admin API. */
import { setTimeout as sleep } from "node:timers/promises";
import type { TaskStatus } from "../../../entities/BaseTaskEntity";
import { TASK_STATUSES } from "../../../entities/status";
import { listTaskPage, MAX_LIST_LIMIT, showTask } from "../../admin/list";
import type { WorkflowView } from "../../admin/workflow";
import { describeClassControls, getStats, type QueueStats } from "../../admin/stats";
import { InvalidOptionError } from "../../errors";
import { checkTaskId } from "../../validation";
import { parseInteger } from "../../parse";
import { connect, type ConnectionFlags } from "../connect";
import { printJson, printJsonLine, printRecord, printTable } from "../output";
import { CliError } from "../errors";

export async function statsCommand(flags: ConnectionFlags & { json?: boolean; watch?: string | boolean }): Promise<void> {
  const intervalMs = flags.watch === undefined || flags.watch === false ? null : flags.watch === true ? 2_000 : seconds(flags.watch);
  const conn = await connect(flags, { command: "stats" });
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    do {
      const stats = await getStats({ dataSource: conn.dataSource });
      if (flags.json) {
        // One JSON document per refresh, one per line when watching (easy to pipe to jq).
        if (intervalMs === null) printJson(stats);
        else printJsonLine(stats);
      } else {
        if (intervalMs !== null && process.stdout.isTTY) process.stdout.write("\x1b[2J\x1b[H");
        printTable(stats.counts as unknown as Record<string, unknown>[], { queue: "queue", type: "type", status: "status", count: "count" });
        printRecord({
          "oldest ready": stats.oldestReadyAgeMs === null ? "none" : `${(stats.oldestReadyAgeMs / 1000).toFixed(1)} s`,
          "finished last minute": stats.finishedLastMinute,
          "live workers": stats.liveWorkers,
          ...(stats.unknownTypes.length > 0 && conn.fromModule
            ? { "types without a class": stats.unknownTypes.map((u) => `${u.type} (${u.count})`).join(", ") }
            : {}),
          ...controlsSummary(stats.controls),
          ...classControlsSummary(stats.classControls),
        });
      }
      if (intervalMs === null) break;
      await sleep(intervalMs, undefined, { signal: stop.signal }).catch(() => undefined);
    } while (!stop.signal.aborted);
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await conn.close();
  }
}

/** Paused and limited queues and types, as stats lines (none when there are none). */
function controlsSummary(controls: QueueStats["controls"]): Record<string, string> {
  const paused = controls.filter((c) => c.paused).map((c) => `${c.scope} ${c.name}`);
  const limited = controls.filter((c) => c.concurrency !== null).map((c) => `${c.scope} ${c.name} (${c.concurrency})`);
  const rated = controls.filter((c) => c.rate !== null).map((c) => `${c.scope} ${c.name} (${c.rate!.max} per ${c.rate!.perMs} ms)`);
  return {
    ...(paused.length > 0 ? { paused: paused.join(", ") } : {}),
    ...(limited.length > 0 ? { "concurrency limits": limited.join(", ") } : {}),
    ...(rated.length > 0 ? { "rate limits": rated.join(", ") } : {}),
  };
}

/** What the task classes declare, one line per class (none when no class declares any). */
function classControlsSummary(classes: QueueStats["classControls"]): Record<string, string> {
  return Object.fromEntries(
    classes.map((c) => {
      const { unique, concurrency, rate } = describeClassControls(c);
      const parts = [unique && `unique ${unique}`, concurrency && `at most ${concurrency}`, rate && `at most ${rate}`];
      return [`class ${c.type}`, parts.filter((p) => p !== null).join("; ")];
    }),
  );
}

export async function listCommand(flags: ConnectionFlags & { json?: boolean; status?: string; type?: string; queue?: string; limit?: string; before?: string }): Promise<void> {
  if (flags.status !== undefined && !TASK_STATUSES.includes(flags.status as TaskStatus)) {
    throw new InvalidOptionError(`--status must be one of ${TASK_STATUSES.join(", ")}, got ${JSON.stringify(flags.status)}`);
  }
  const limit = flags.limit === undefined ? 50 : parseInteger(flags.limit, "--limit", 1, MAX_LIST_LIMIT);
  const before = flags.before === undefined ? undefined : checkTaskId(flags.before, "--before");
  const conn = await connect(flags, { command: "list" });
  try {
    // A page by keyset, bounded in what it reads (see listTaskPage); the cursor goes to stderr, so
    // stdout stays the table or the JSON array.
    const { tasks, next } = await listTaskPage({ dataSource: conn.dataSource, status: flags.status as TaskStatus | undefined, type: flags.type, queue: flags.queue, limit, before });
    if (next !== null) process.stderr.write(`more: --before ${next}\n`);
    if (flags.json) printJson(tasks);
    else
      // One line per task: the first line of the last error, cut to fit.
      printTable(tasks.map((t) => ({ ...t, lastError: t.lastError === null ? null : firstLine(t.lastError, 80), progress: progressText(t.progress, t.progressMessage) })), {
        id: "id",
        type: "type",
        queue: "queue",
        status: "status",
        priority: "priority",
        attempts: "attempts",
        runAt: "run at",
        finishedAt: "finished at",
        progress: "progress",
        lastError: "last error",
      });
  } finally {
    await conn.close();
  }
}

export async function showCommand(id: string, flags: ConnectionFlags & { json?: boolean }): Promise<void> {
  const taskId = checkTaskId(id);
  const conn = await connect(flags, { command: "show" });
  try {
    const details = await showTask(taskId, { dataSource: conn.dataSource });
    if (!details) throw new CliError(`no task with id ${taskId}`);
    if (flags.json) return printJson(details);
    printRecord(details.fields);
    process.stdout.write("\nhistory:\n");
    printTable(details.events as unknown as Record<string, unknown>[], { at: "at", kind: "event", attempt: "attempt", worker: "worker", error: "error" });
    if (details.workflow) printWorkflow(details.workflow);
  } finally {
    await conn.close();
  }
}

/** A task's workflow, after its history: each relation listed (its first RELATED_LISTED), then the counts below it. */
function printWorkflow(workflow: WorkflowView): void {
  const { parent, children, dependencies, dependents, below } = workflow;
  process.stdout.write("\nworkflow:\n");
  const counts = Object.entries(below.byStatus).map(([status, n]) => `${n} ${status}`).join(", ");
  printRecord({
    parent: parent ? `${parent.id} ${parent.type ?? "(deleted)"} ${parent.status ?? ""}`.trim() : null,
    below: `${below.total}${below.complete ? "" : "+"} task(s)${counts ? `: ${counts}` : ""}`,
  });
  const related = { id: "id", type: "type", status: "status" };
  for (const [name, list, columns] of [
    ["children", children, related],
    ["dependencies", dependencies, { ...related, edge: "edge" }],
    ["dependents", dependents, { ...related, edge: "edge" }],
  ] as const) {
    if (list.total === 0) continue;
    process.stdout.write(`\n${name} (${list.total}${list.total > list.tasks.length ? `, the first ${list.tasks.length} listed` : ""}):\n`);
    printTable(list.tasks as unknown as Record<string, unknown>[], columns);
  }
}

/** The longest `--watch` interval: a day (a longer one would outlast node's timers, 2^31-1 ms). */
const MAX_WATCH_SECONDS = 86_400;

function seconds(raw: string): number {
  // Decimal notation only: Number() would also take "0x10", "1e3" and "" (0).
  const value = /^\s*\d+(\.\d+)?\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isFinite(value) || value <= 0 || value > MAX_WATCH_SECONDS) {
    throw new InvalidOptionError(`--watch takes seconds between refreshes, more than 0 and at most ${MAX_WATCH_SECONDS}, got ${JSON.stringify(raw)}`);
  }
  return Math.max(1, Math.round(value * 1000));
}

/** The first line of `text`, cut to `max` characters (never inside a surrogate pair). */
function firstLine(text: string, max: number): string {
  const chars = Array.from(text.split("\n")[0]);
  return chars.length > max ? chars.slice(0, max).join("") + "…" : chars.join("");
}

/** "40% 4 of 10 files" (the message's first line, cut), or null. */
function progressText(fraction: number | null, message: string | null): string | null {
  if (fraction === null) return null;
  const percent = `${Math.round(fraction * 1000) / 10}%`;
  return message ? `${percent} ${firstLine(message, 40)}` : percent;
}
