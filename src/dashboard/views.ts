/**
 * The dashboard's pages as HTML. hono's `html` template escapes every value it is given, so a
 * task's column or error holding markup renders as text; nothing from the database is ever passed
 * through `raw`. No inline script or style (the Content-Security-Policy forbids them): behaviour
 * lives in /assets/dashboard.js.
 */
import { html } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
import { describeClassControls, type QueueReadiness, type QueueStats, type WorkerInfoRow } from "../admin/stats";
import type { ControlRow } from "../admin/queues";
import type { ScheduleInfo } from "../admin/schedules";
import type { TaskDetails, TaskPage } from "../admin/list";
import type { RelatedTask, WorkflowView } from "../admin/workflow";
import { FINISHED_STATUSES, TASK_STATUSES } from "../../entities/status";

type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

/** What every page needs: where it is mounted, the CSRF token, whether actions are shown. */
export interface PageContext {
  base: string;
  csrf: string;
  readOnly: boolean;
}

export function layout(ctx: PageContext, title: string, body: Html): Html {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · ormq</title><link rel="stylesheet" href="${ctx.base}/assets/uplot.css"><link rel="stylesheet" href="${ctx.base}/assets/dashboard.css"><script src="${ctx.base}/assets/uplot.js" defer></script><script src="${ctx.base}/assets/dashboard.js" defer></script></head>
<body><nav><b>ormq</b> <a href="${ctx.base}/">Overview</a> <a href="${ctx.base}/tasks">Tasks</a> <a href="${ctx.base}/workers">Workers</a> <a href="${ctx.base}/queues">Queues and schedules</a>${ctx.readOnly ? html` <span class="ro">read-only</span>` : ""}<form method="post" action="${ctx.base}/logout" class="inline logout"><input type="hidden" name="_csrf" value="${ctx.csrf}"><button type="submit">Sign out</button></form></nav>
<main><h1>${title}</h1>${body}</main></body></html>`;
}

/** A POST form of one button, with the CSRF token (nothing in read-only mode). */
export function action(ctx: PageContext, path: string, label: string, fields: Record<string, string> = {}): Html {
  if (ctx.readOnly) return html``;
  return html`<form method="post" action="${ctx.base}${path}" class="inline"><input type="hidden" name="_csrf" value="${ctx.csrf}">${Object.entries(fields).map(
    ([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`,
  )}<button type="submit">${label}</button></form>`;
}

export function overview(ctx: PageContext, stats: QueueStats, readiness: QueueReadiness[], schedules: ScheduleInfo[], at: Date, perMinute: { minute: Date; count: number }[]): Html {
  const ready = new Map(readiness.map((r) => [r.queue, r]));
  const queues = [...new Set(stats.counts.map((c) => c.queue))].sort();
  const count = (queue: string, status: string) => stats.counts.filter((c) => c.queue === queue && c.status === status).reduce((n, c) => n + c.count, 0);
  return html`<div id="live" data-refresh="${ctx.base}/?partial=1">
<p>As of ${at.toISOString()} · live workers: <b>${stats.liveWorkers}</b> · finished in the last minute: <b>${stats.finishedLastMinute}</b> · oldest ready task waited: <b>${stats.oldestReadyAgeMs === null ? "none ready" : `${Math.round(stats.oldestReadyAgeMs / 1000)} s`}</b></p>
<table><tr><th>queue</th>${TASK_STATUSES.map((s) => html`<th>${s}</th>`)}<th>ready</th><th>oldest ready waited</th></tr>
${queues.map((q) => html`<tr><td><a href="${ctx.base}/tasks?queue=${encodeURIComponent(q)}">${q}</a></td>${TASK_STATUSES.map((s) => html`<td><a href="${ctx.base}/tasks?queue=${encodeURIComponent(q)}&amp;status=${s}">${count(q, s)}</a></td>`)}<td>${ready.get(q)?.ready ?? 0}</td><td>${ready.has(q) ? `${Math.round(ready.get(q)!.oldestReadyAgeMs / 1000)} s` : ""}</td></tr>`)}
</table>
<h2>Finished per minute, the last hour</h2>
<div id="chart" data-points="${JSON.stringify([perMinute.map((p) => p.minute.getTime() / 1000), perMinute.map((p) => p.count)])}"></div>
<h2>Paused and limited</h2>${controls(ctx, stats.controls)}
${classControls(ctx, stats.classControls)}
<h2>Schedules</h2>${scheduleTable(ctx, schedules)}
${stats.unknownTypes.length > 0 ? html`<h2>Types no class here runs</h2><ul>${stats.unknownTypes.map((u) => html`<li>${u.type}: ${u.count}</li>`)}</ul>` : ""}
</div>`;
}

export function controls(ctx: PageContext, rows: ControlRow[]): Html {
  if (rows.length === 0) return html`<p>No queue or type is paused or limited.</p>`;
  return html`<table><tr><th>scope</th><th>name</th><th>paused</th><th>concurrency</th><th>rate</th><th></th></tr>
${rows.map(
  (c) => html`<tr><td>${c.scope}</td><td>${c.name}</td><td>${c.paused ? "paused" : ""}</td><td>${c.concurrency ?? ""}</td><td>${c.rate ? `${c.rate.max} per ${c.rate.perMs} ms` : ""}</td>
<td>${c.scope === "queue" ? action(ctx, `/queues/${encodeURIComponent(c.name)}/${c.paused ? "resume" : "pause"}`, c.paused ? "Resume" : "Pause") : ""}</td></tr>`,
)}</table>`;
}

/** What the task classes declare (static unique, concurrencyLimit, rateLimit); nothing when none does. */
function classControls(ctx: PageContext, rows: QueueStats["classControls"]): Html | string {
  if (rows.length === 0) return "";
  return html`<h3>Declared by task classes</h3><table><tr><th>type</th><th>unique</th><th>concurrency</th><th>rate</th></tr>
${rows.map((c) => {
  const d = describeClassControls(c);
  return html`<tr><td><a href="${ctx.base}/tasks?type=${encodeURIComponent(c.type)}">${c.type}</a></td><td>${d.unique ?? ""}</td><td>${d.concurrency ?? ""}</td><td>${d.rate ?? ""}</td></tr>`;
})}</table>`;
}

export function scheduleTable(ctx: PageContext, schedules: ScheduleInfo[]): Html {
  if (schedules.length === 0) return html`<p>No schedules.</p>`;
  return html`<table><tr><th>name</th><th>type</th><th>cron</th><th>zone</th><th>from</th><th>state</th><th>next run</th><th>last tick</th><th></th></tr>
${schedules.map(
  (s) => html`<tr><td>${s.name}</td><td>${s.type}</td><td><code>${s.cron}</code></td><td>${s.timezone ?? "UTC"}</td><td>${s.source}</td><td>${s.paused ? "paused" : "active"}</td>
<td>${s.paused ? "" : (s.nextRun?.toISOString() ?? "")}</td><td>${s.lastTick?.toISOString() ?? ""}</td><td>${action(ctx, `/schedules/${encodeURIComponent(s.name)}/${s.paused ? "resume" : "pause"}`, s.paused ? "Resume" : "Pause")}</td></tr>`,
)}</table>`;
}

export function queuesPage(ctx: PageContext, rows: ControlRow[], queues: string[], schedules: ScheduleInfo[]): Html {
  return html`<h2>Queues</h2><table><tr><th>queue</th><th></th><th>limits</th></tr>
${queues.map((q) => {
  const c = rows.find((r) => r.scope === "queue" && r.name === q);
  return html`<tr><td>${q}</td><td>${c?.paused ? "paused " : ""}${action(ctx, `/queues/${encodeURIComponent(q)}/${c?.paused ? "resume" : "pause"}`, c?.paused ? "Resume" : "Pause")}</td>
<td>${ctx.readOnly ? html`concurrency ${c?.concurrency ?? "none"}, rate ${c?.rate ? `${c.rate.max} per ${c.rate.perMs} ms` : "none"}` : html`<form method="post" action="${ctx.base}/queues/${encodeURIComponent(q)}/limits" class="inline"><input type="hidden" name="_csrf" value="${ctx.csrf}">concurrency <input name="concurrency" size="6" value="${c?.concurrency ?? ""}" placeholder="none"> rate <input name="rateMax" size="6" value="${c?.rate?.max ?? ""}" placeholder="none"> per <input name="ratePer" size="6" value="${c?.rate ? `${c.rate.perMs}ms` : ""}" placeholder="1s"> <button type="submit">Set</button></form>`}</td></tr>`;
})}</table>
<h2>Paused and limited</h2>${controls(ctx, rows)}
<h2>Schedules</h2>${scheduleTable(ctx, schedules)}`;
}

/** One filter input of a class's own column, by the column's kind. */
export interface FieldInput {
  name: string;
  kind: "text" | "number" | "boolean";
  value?: string;
  min?: string;
  max?: string;
}

export function tasksPage(ctx: PageContext, query: Record<string, string>, types: string[], fields: FieldInput[], page: TaskPage, nextHref: string | null): Html {
  const q = (k: string) => query[k] ?? "";
  return html`<form method="get" action="${ctx.base}/tasks" class="filters">
status <select name="status"><option value="">any</option>${TASK_STATUSES.map((s) => html`<option ${q("status") === s ? "selected" : ""}>${s}</option>`)}</select>
type <select name="type"><option value="">any</option>${types.map((t) => html`<option ${q("type") === t ? "selected" : ""}>${t}</option>`)}</select>
queue <input name="queue" value="${q("queue")}" size="12">
created from <input name="createdFrom" value="${q("createdFrom")}" size="20" placeholder="2026-11-30T08:00">
before <input name="createdBefore" value="${q("createdBefore")}" size="20">
${fields.map((f) =>
  f.kind === "number"
    ? html`<span class="field">${f.name} <input name="f.${f.name}.min" value="${f.min ?? ""}" size="6" placeholder="min">–<input name="f.${f.name}.max" value="${f.max ?? ""}" size="6" placeholder="max"></span>`
    : f.kind === "boolean"
      ? html`<span class="field">${f.name} <select name="f.${f.name}"><option value="">any</option><option ${f.value === "true" ? "selected" : ""}>true</option><option ${f.value === "false" ? "selected" : ""}>false</option></select></span>`
      : html`<span class="field">${f.name} <input name="f.${f.name}" value="${f.value ?? ""}" size="14"></span>`,
)}
<button type="submit">Filter</button></form>
<form method="get" action="${ctx.base}/tasks/find" class="inline">id <input name="id" size="12"> <button type="submit">Open</button></form>
${q("status") === "failed" ? action(ctx, "/tasks/retry-failed", "Retry every failed task of this filter", filterFields(query)) : ""}
${ctx.readOnly ? "" : html`<form method="post" action="${ctx.base}/tasks/bulk" id="bulk"><input type="hidden" name="_csrf" value="${ctx.csrf}"></form>`}
<table><tr>${ctx.readOnly ? "" : html`<th></th>`}<th>id</th><th>type</th><th>queue</th><th>status</th><th>attempts</th><th>run at</th><th>progress</th><th>last error</th></tr>
${page.tasks.map(
  (t) => html`<tr>${ctx.readOnly ? "" : html`<td><input type="checkbox" name="ids" value="${t.id}" form="bulk" aria-label="select task ${t.id}"></td>`}<td><a href="${ctx.base}/tasks/${t.id}">${t.id}</a></td><td>${t.type}</td><td>${t.queue}</td><td>${t.status}</td><td>${t.attempts}/${t.maxAttempts}</td>
<td>${show(t.runAt)}</td><td>${t.progress === null ? "" : `${Math.round(t.progress * 100)}%`} ${t.progressMessage ?? ""}</td><td>${(t.lastError ?? "").split("\n")[0].slice(0, 120)}</td></tr>`,
)}</table>
${ctx.readOnly || page.tasks.length === 0 ? "" : html`<p>Selected: <button type="submit" form="bulk" name="act" value="retry">Retry</button> <button type="submit" form="bulk" name="act" value="cancel">Cancel</button> <button type="submit" form="bulk" name="act" value="delete">Delete</button></p>`}
${page.tasks.length === 0 ? html`<p>No task on this page.</p>` : ""}
${nextHref ? html`<p><a href="${nextHref}">Older tasks →</a></p>` : ""}`;
}

/** The filter's query fields, for a form that repeats it (retry every failed task of it). */
function filterFields(query: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(query)) if (v !== "" && k !== "before") out[k] = v;
  return out;
}

export function taskPage(ctx: PageContext, id: string, details: TaskDetails, sameKey: { id: string; status: string }[]): Html {
  const f = details.fields;
  const status = String(f.status);
  const errors = Array.isArray(f.errors) ? (f.errors as { attempt?: unknown; name?: unknown; message?: unknown; stack?: unknown; at?: unknown }[]) : [];
  return html`<p>${status === "failed" ? action(ctx, `/tasks/${id}/retry`, "Retry") : ""}
${status === "pending" || status === "running" || status === "waiting" ? action(ctx, `/tasks/${id}/cancel`, "Cancel") : ""}
${details.workflow && details.workflow.below.total > 0 ? action(ctx, `/tasks/${id}/cancel-workflow`, "Cancel workflow") : ""}
${FINISHED_STATUSES.includes(status as never) ? action(ctx, `/tasks/${id}/delete`, "Delete") : ""}</p>
${f.progress !== null && f.progress !== undefined ? html`<p>Progress: <progress max="1" value="${String(f.progress)}"></progress> ${Math.round(Number(f.progress) * 100)}% ${String(f.progressMessage ?? "")}</p>` : ""}
<table class="fields">${Object.entries(f)
    .filter(([k]) => k !== "errors" && k !== "result")
    // The last error's first line here; its stack is under Errors.
    .map(([k, v]) => html`<tr><th>${k}</th><td>${k === "lastError" && typeof v === "string" ? v.split("\n")[0] : show(v)}</td></tr>`)}</table>
<h2>Result</h2><pre>${f.result === undefined || f.result === null ? "none" : JSON.stringify(f.result, null, 2)}</pre>
<h2>Errors</h2>${errors.length === 0 ? html`<p>None.</p>` : errors.map((e) => html`<details><summary>attempt ${String(e.attempt ?? "?")}: ${String(e.name ?? "Error")}: ${String(e.message ?? "")}</summary><pre>${String(e.stack ?? "")}</pre></details>`)}
<h2>History</h2><table><tr><th>at</th><th>event</th><th>attempt</th><th>worker</th><th>error</th></tr>
${details.events.map((e) => html`<tr><td>${show(e.at)}</td><td>${e.kind}</td><td>${e.attempt ?? ""}</td><td>${e.worker ?? ""}</td><td>${e.error ?? ""}</td></tr>`)}</table>
<h2>Related</h2>
${f.scheduleName ? html`<p>Enqueued by schedule <a href="${ctx.base}/queues">${String(f.scheduleName)}</a>.</p>` : ""}
${sameKey.length > 0 ? html`<p>Tasks with the same unique key: ${sameKey.map((t) => html`<a href="${ctx.base}/tasks/${t.id}">${t.id}</a> (${t.status}) `)}</p>` : html`<p>No other task with its unique key.</p>`}
${details.workflow ? workflowSection(ctx, details.workflow) : ""}`;
}

/** A task's workflow: its parent, what is below it by status, then its children, dependencies and dependents. */
function workflowSection(ctx: PageContext, w: WorkflowView): Html {
  const link = (t: RelatedTask) => html`<a href="${ctx.base}/tasks/${t.id}">${t.id}</a>`;
  const counts = Object.entries(w.below.byStatus).map(([s, n]) => `${n} ${s}`).join(", ");
  const list = (title: string, l: { tasks: RelatedTask[]; total: number }, edges: boolean) =>
    l.total === 0
      ? ""
      : html`<h3>${title} (${l.total}${l.total > l.tasks.length ? `, the first ${l.tasks.length} listed` : ""})</h3><table><tr><th>id</th><th>type</th><th>status</th>${edges ? html`<th>edge</th>` : ""}</tr>
${l.tasks.map((t) => html`<tr><td>${link(t)}</td><td>${t.type ?? "(deleted)"}</td><td>${t.status ?? ""}</td>${edges ? html`<td>${t.edge ?? ""}</td>` : ""}</tr>`)}</table>`;
  return html`<h2>Workflow</h2>
<p>Parent: ${w.parent ? html`${link(w.parent)} (${w.parent.type ?? "deleted"}${w.parent.status ? `, ${w.parent.status}` : ""})` : "none"}.
Below it: ${w.below.total}${w.below.complete ? "" : "+"} task(s)${counts ? `: ${counts}` : ""}.</p>
${list("Children", w.children, false)}${list("Dependencies", w.dependencies, true)}${list("Dependents", w.dependents, true)}`;
}

export function workersPage(workers: WorkerInfoRow[]): Html {
  if (workers.length === 0) return html`<p>No worker has run in the last hour.</p>`;
  return html`<table><tr><th>id</th><th>name</th><th>host</th><th>pid</th><th>queues</th><th>state</th><th>started</th><th>last heartbeat</th><th>running</th></tr>
${workers.map(
  (w) => html`<tr><td>${w.id}</td><td>${w.name}</td><td>${w.host}</td><td>${w.pid}</td><td>${w.queues?.join(", ") ?? "all"}</td><td>${w.state}</td><td>${show(w.startedAt)}</td><td>${show(w.lastHeartbeatAt)}</td><td>${w.running}</td></tr>`,
)}</table>`;
}

export function message(text: string, back?: string): Html {
  return html`<p class="message">${text}</p>${back ? html`<p><a href="${back}">Back</a></p>` : ""}`;
}

export function confirmPage(ctx: PageContext, path: string, text: string, fields: Record<string, string>): Html {
  return html`<p class="message">${text}</p>${action(ctx, path, "Yes, do it", { ...fields, confirm: "yes" })} <a href="${ctx.base}/tasks">Cancel</a>`;
}

export function loginPage(base: string, failed: boolean): Html {
  return html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in · ormq</title><link rel="stylesheet" href="${base}/assets/dashboard.css"></head>
<body><main><h1>ormq dashboard</h1>${failed ? html`<p class="message">That token is not right.</p>` : ""}
<form method="post" action="${base}/login">Token <input type="password" name="token" autocomplete="current-password"> <button type="submit">Sign in</button></form></main></body></html>`;
}

/** A stored value for a cell: dates as ISO, objects as JSON, the rest as text (escaped by the template). */
function show(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? "" : value.toISOString();
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}
