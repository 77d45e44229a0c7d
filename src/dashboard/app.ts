/**
 * The dashboard: a request handler (`ormqDashboard`) for node:http, Express, Fastify, Koa and
 * NestJS, routed by hono. Its pages read through ormq's public admin API and its actions write
 * through it (the same guarded writes as the CLI); it runs no SQL of its own.
 *
 * Bounded load: the overview's numbers come from one shared read per REFRESH_MS, however many
 * pages are open. Every response carries security headers (a Content-Security-Policy without
 * inline script). Bad input (an unknown filter column, a malformed id, a tampered cursor, text
 * the database cannot compare) is a 400 with a message; an unexpected error is a 500 without a
 * stack.
 */
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, join } from "node:path";
import { getRequestListener } from "@hono/node-server";
import { Hono, type Context } from "hono";
import type { DataSource, EntityMetadata } from "typeorm";
import { cancelTask } from "../tasks/cancel";
import { cancelWorkflow } from "../admin/cancelWorkflow";
import { deleteTasks } from "../admin/deleteTasks";
import { listTaskPage, showTask, TASK_STATUSES } from "../admin/list";
import { listControls, pauseQueue, resumeQueue, setQueueLimits } from "../admin/queues";
import { retryFailed, retryTask } from "../admin/retry";
import { listSchedules, pauseSchedule, resumeSchedule } from "../admin/schedules";
import { countFinishedByMinute, getReadiness, getStats, listWorkers } from "../admin/stats";
import { checkTaskFilter, filterableColumns, parseFilterDate, type FieldCondition, type TaskFilter } from "../admin/taskFilter";
import { tasksWithUniqueKey } from "../dialect/taskReads";
import { InvalidOptionError, OrmqError } from "../errors";
import type { Logger } from "../logger";
import { TaskRegistry } from "../registry";
import { checkTaskId } from "../validation";
import { parseDuration } from "../parse";
import { DASHBOARD_CSS, DASHBOARD_JS } from "./assets";
import { checkAuth, Guard, SESSION_COOKIE, type DashboardAuth } from "./auth";
import * as views from "./views";
import { ormqFor } from "../client/client";

/** Options of `ormqDashboard`. */
export interface DashboardOptions {
  dataSource: DataSource;
  /** Required: `{ token }`, `(req) => boolean` (your sessions), or "none" (see docs/dashboard.md). */
  auth: DashboardAuth;
  /** Hides and refuses every action. */
  readOnly?: boolean;
  /** The path it is mounted under when the framework does not strip it (Koa, Fastify): "/ormq". Express's `app.use` path is found by itself. */
  basePath?: string;
  /** Where unexpected errors are logged. Default: nowhere. */
  logger?: Logger;
}

/** How often the overview refreshes, and how long one stats read serves every open page. */
export const REFRESH_MS = 5_000;

/** Most tasks one bulk action takes. */
const MAX_BULK = 500;

/** How long one read of the finished-per-minute chart serves every open page. */
const CHART_MS = 60_000;

/** uPlot's files, read from its package once (served by the dashboard itself: no CDN). */
const uplotFiles = new Map<string, string>();
function uplotAsset(name: string): string {
  let text = uplotFiles.get(name);
  if (text === undefined) uplotFiles.set(name, (text = readFileSync(join(dirname(require.resolve("uplot/package.json")), "dist", name), "utf8")));
  return text;
}

const SECURITY_HEADERS: Record<string, string> = {
  "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
  "Cache-Control": "no-store",
};

type Env = { Bindings: { incoming: IncomingMessage; outgoing: ServerResponse }; Variables: { base: string; identity: string } };

/** A request handler serving the dashboard: `(req, res)`, as node:http and Express call it. */
export function ormqDashboard(options: DashboardOptions): (req: IncomingMessage, res: ServerResponse) => void {
  if (!options || typeof options !== "object" || !options.dataSource) throw new InvalidOptionError("ormqDashboard: give { dataSource, auth }");
  const guard = new Guard(checkAuth(options.auth));
  const basePath = options.basePath?.replace(/\/+$/, "") ?? "";
  if (basePath !== "" && !/^\/[\w\-./]*$/.test(basePath)) throw new InvalidOptionError(`ormqDashboard: basePath must be a path such as "/ormq", got ${JSON.stringify(options.basePath)}`);
  const listener = getRequestListener(app(options, guard).fetch);
  return (req, res) => {
    // Without authentication, who may ask at all: before anything else (assets too), and before
    // hono, which cannot read a request without a Host header.
    const refused = guard.refusesRemote(req) ? 'this dashboard has no authentication (auth: "none") and answers callers on this machine only' : guard.hostRefusal(req);
    if (refused !== null) {
      res.writeHead(403, { ...SECURITY_HEADERS, "Content-Type": "text/plain; charset=utf-8" }).end(refused);
      return;
    }
    // The prefix: stripped by Express (req.baseUrl), or by us when given as basePath.
    let base = (req as { baseUrl?: string }).baseUrl ?? "";
    if (basePath && (req.url === basePath || req.url?.startsWith(`${basePath}/`) || req.url?.startsWith(`${basePath}?`))) {
      base = basePath;
      req.url = req.url.slice(basePath.length) || "/";
    }
    (req as { ormqBase?: string }).ormqBase = base;
    void listener(req, res);
  };
}

function app(options: DashboardOptions, guard: Guard): Hono<Env> {
  const { dataSource } = options;
  const readOnly = options.readOnly === true;
  const overviewRead = sharedRead(
    async () => ({ stats: await getStats({ dataSource }), readiness: await getReadiness({ dataSource }), schedules: await listSchedules({ dataSource }), at: new Date() }),
    REFRESH_MS,
  );
  // The chart's minutes change once a minute, and their read scans the hour's finished tasks.
  const chartRead = sharedRead(() => countFinishedByMinute({ dataSource, minutes: 60 }), CHART_MS);
  const app = new Hono<Env>();

  app.use("*", async (c, next) => {
    c.set("base", (c.env.incoming as { ormqBase?: string }).ormqBase ?? "");
    await next();
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) c.res.headers.set(k, v);
  });
  app.get("/assets/dashboard.js", (c) => c.body(DASHBOARD_JS, 200, { "Content-Type": "text/javascript; charset=utf-8" }));
  app.get("/assets/dashboard.css", (c) => c.body(DASHBOARD_CSS, 200, { "Content-Type": "text/css; charset=utf-8" }));
  app.get("/assets/uplot.js", (c) => c.body(uplotAsset("uPlot.iife.min.js"), 200, { "Content-Type": "text/javascript; charset=utf-8" }));
  app.get("/assets/uplot.css", (c) => c.body(uplotAsset("uPlot.min.css"), 200, { "Content-Type": "text/css; charset=utf-8" }));
  app.get("/login", (c) => (guard.usesToken ? c.html(views.loginPage(c.get("base"), false)) : c.text("not found", 404)));
  app.post("/login", async (c) => {
    if (!guard.usesToken) return c.text("not found", 404);
    const body = await c.req.parseBody();
    const token = typeof body.token === "string" ? body.token : "";
    if (!guard.tokenMatches(token)) return c.html(views.loginPage(c.get("base"), true), 401);
    const path = c.get("base") || "/";
    c.header("Set-Cookie", `${SESSION_COOKIE}=${encodeURIComponent(token)}; Path=${path}; HttpOnly; SameSite=Strict${secure(c) ? "; Secure" : ""}`);
    return c.redirect(`${c.get("base")}/`, 303);
  });

  // Everything below needs an allowed caller, and its actions a CSRF token.
  app.use("*", async (c, next) => {
    const identity = await guard.identity(c.env.incoming);
    if (identity === null) {
      if (guard.usesToken && c.req.method === "GET") return c.redirect(`${c.get("base")}/login`, 303);
      return c.text("authentication required", 401);
    }
    c.set("identity", identity);
    if (c.req.method === "POST") {
      if (readOnly && c.req.path !== "/logout") return c.text("the dashboard is read-only", 403);
      const body = await c.req.parseBody();
      if (!guard.checkCsrf(identity, body._csrf)) return c.text("missing or wrong CSRF token: reload the page and try again", 403);
    }
    await next();
  });

  const ctx = (c: Context<Env>): views.PageContext => ({ base: c.get("base"), csrf: guard.csrf(c.get("identity")), readOnly });
  const page = (c: Context<Env>, title: string, body: Parameters<typeof views.layout>[2], status: 200 | 400 | 404 = 200) => c.html(views.layout(ctx(c), title, body), status);

  app.get("/", async (c) => {
    const { stats, readiness, schedules, at } = await overviewRead();
    return page(c, "Overview", views.overview(ctx(c), stats, readiness.queues, schedules, at, await chartRead()));
  });

  app.get("/tasks", async (c) => {
    const query = searchParams(c);
    const registry = ormqFor(dataSource).registry;
    const { fields, filter } = filterOf(registry, query);
    const before = query.before ? checkTaskId(query.before, "before (the page cursor)") : undefined;
    const result = await listTaskPage({ dataSource, ...filter, status: filter.status as never, limit: 50, before });
    const next = result.next === null ? null : `${c.get("base")}/tasks?${new URLSearchParams({ ...query, before: result.next }).toString()}`;
    return page(c, "Tasks", views.tasksPage(ctx(c), query, [...registry.byKey.keys()].sort(), fields, result, next));
  });

  app.get("/tasks/find", (c) => c.redirect(`${c.get("base")}/tasks/${checkTaskId(searchParams(c).id ?? "", "id")}`, 303));

  app.get("/tasks/:id", async (c) => {
    const id = checkTaskId(c.req.param("id"), "task id");
    const details = await showTask(id, { dataSource });
    if (!details) return page(c, `Task ${id}`, views.message("No such task."), 404);
    const key = typeof details.fields.uniqueKey === "string" ? details.fields.uniqueKey : null;
    const sameKey = key ? (await tasksWithUniqueKey(dataSource, key, 20)).filter((t) => t.id !== id) : [];
    return page(c, `Task ${id}`, views.taskPage(ctx(c), id, details, sameKey));
  });

  app.post("/tasks/:id/retry", async (c) => {
    const id = checkTaskId(c.req.param("id"), "task id");
    const r = await retryTask(id, { dataSource });
    const said = r.outcome === "requeued" ? "Requeued." : r.outcome === "duplicate" ? `Still failed: task ${r.standingId ?? "?"} holds its unique key.` : r.outcome === "notFailed" ? `It is ${r.status}, not failed.` : "No such task.";
    return page(c, `Task ${id}`, views.message(said, `${c.get("base")}/tasks/${id}`));
  });
  app.post("/tasks/:id/cancel", async (c) => {
    const id = checkTaskId(c.req.param("id"), "task id");
    const r = await cancelTask(id, { dataSource, reason: "cancelled from the dashboard" });
    const said = { cancelled: "Cancelled.", cancelRequested: "Its worker was asked to stop it.", alreadyFinished: "It had already finished.", notFound: "No such task." }[r.outcome];
    return page(c, `Task ${id}`, views.message(said, `${c.get("base")}/tasks/${id}`));
  });
  app.post("/tasks/:id/cancel-workflow", async (c) => {
    const id = checkTaskId(c.req.param("id"), "task id");
    const body = await c.req.parseBody();
    if (body.confirm !== "yes") {
      return page(c, `Task ${id}`, views.confirmPage(ctx(c), `/tasks/${id}/cancel-workflow`, `Cancel task ${id} and everything below it in its workflow (its children and dependents, all the way down)?`, {}));
    }
    const r = await cancelWorkflow(id, { dataSource, reason: "workflow cancelled from the dashboard" });
    const said = r.found ? `${r.cancelled} of its workflow's ${r.tasks} tasks cancelled; ${r.cancelRequested} running asked to stop; the others had finished.` : "No such task.";
    return page(c, `Task ${id}`, views.message(said, `${c.get("base")}/tasks/${id}`));
  });
  app.post("/tasks/:id/delete", async (c) => {
    const id = checkTaskId(c.req.param("id"), "task id");
    // The guarded delete touches finished tasks only; the task is read only to say why not.
    const r = await deleteTasks({ dataSource, id });
    if (r.deleted === 1) return page(c, `Task ${id}`, views.message("Deleted.", `${c.get("base")}/tasks`));
    if (r.blocked[0]) return page(c, `Task ${id}`, views.message(`Not deleted: ${r.blocked[0].error}.`, `${c.get("base")}/tasks`));
    const details = await showTask(id, { dataSource });
    return page(c, `Task ${id}`, views.message(details ? `It is ${String(details.fields.status)}: only finished tasks are deleted.` : "No such task."), 400);
  });
  app.post("/tasks/bulk", async (c) => {
    const body = await c.req.parseBody({ all: true });
    const act = String(body.act ?? "");
    if (!["retry", "cancel", "delete"].includes(act)) throw new InvalidOptionError(`unknown action ${JSON.stringify(act)} (retry, cancel, delete)`);
    const given = [body.ids ?? [], String(body.idList ?? "").split(",").filter(Boolean)].flat().map(String);
    const ids = [...new Set(given.map((id) => checkTaskId(id, "a selected task id")))];
    if (ids.length === 0) throw new InvalidOptionError("no task selected");
    if (ids.length > MAX_BULK) throw new InvalidOptionError(`at most ${MAX_BULK} tasks at once, got ${ids.length}`);
    if (ids.length > 1 && body.confirm !== "yes") {
      return page(c, "Tasks", views.confirmPage(ctx(c), "/tasks/bulk", `${act[0].toUpperCase()}${act.slice(1)} these ${ids.length} tasks (${ids.join(", ")})?`, { act, idList: ids.join(",") }));
    }
    const done = new Map<string, number>();
    for (const id of ids) {
      const outcome =
        act === "retry"
          ? (await retryTask(id, { dataSource })).outcome
          : act === "cancel"
            ? (await cancelTask(id, { dataSource, reason: "cancelled from the dashboard" })).outcome
            : (await deleteTasks({ dataSource, id })).deleted === 1
              ? "deleted"
              : "notDeleted (not finished, or gone)";
      done.set(outcome, (done.get(outcome) ?? 0) + 1);
    }
    return page(c, "Tasks", views.message(`${act}: ${[...done].map(([o, n]) => `${o} ${n}`).join(", ")}.`, `${c.get("base")}/tasks`));
  });

  app.post("/tasks/retry-failed", async (c) => {
    const body = Object.fromEntries(Object.entries(await c.req.parseBody()).map(([k, v]) => [k, String(v)]));
    const { filter } = filterOf(ormqFor(dataSource).registry, body);
    // Checked before the confirmation: a filter retryFailed would refuse is refused now, not after "yes".
    checkTaskFilter(dataSource, { ...filter, status: "failed" }, "retryFailed");
    const { _csrf, confirm, ...fields } = body;
    void _csrf;
    if (confirm !== "yes") return page(c, "Retry failed tasks", views.confirmPage(ctx(c), "/tasks/retry-failed", "Retry every failed task this filter matches?", fields));
    const r = await retryFailed({ dataSource, ...filter, status: "failed" });
    return page(c, "Retry failed tasks", views.message(`Requeued ${r.requeued}; ${r.duplicates} stayed failed (their unique key is held).`, `${c.get("base")}/tasks?status=failed`));
  });

  app.get("/workers", async (c) => page(c, "Workers", views.workersPage(await listWorkers({ dataSource }))));
  app.get("/queues", async (c) => {
    const controls = await listControls({ dataSource });
    const stats = (await overviewRead()).stats;
    const queues = [...new Set([...stats.counts.map((s) => s.queue), ...controls.filter((x) => x.scope === "queue").map((x) => x.name)])].sort();
    return page(c, "Queues and schedules", views.queuesPage(ctx(c), controls, queues, await listSchedules({ dataSource })));
  });
  app.post("/queues/:queue/:act{pause|resume}", async (c) => {
    const queue = c.req.param("queue");
    await (c.req.param("act") === "pause" ? pauseQueue : resumeQueue)(queue, { dataSource });
    overviewRead.forget();
    return page(c, "Queues and schedules", views.message(`Queue ${queue} ${c.req.param("act") === "pause" ? "paused" : "resumed"}: every worker sees it within a second.`, `${c.get("base")}/queues`));
  });
  app.post("/queues/:queue/limits", async (c) => {
    const queue = c.req.param("queue");
    const body = await c.req.parseBody();
    const text = (name: string) => String(body[name] ?? "").trim();
    const whole = (raw: string, name: string) => {
      if (!/^\d{1,7}$/.test(raw)) throw new InvalidOptionError(`${name} must be a whole number, or empty for none; got ${JSON.stringify(raw)}`);
      return Number(raw);
    };
    const concurrency = text("concurrency") === "" || text("concurrency") === "none" ? null : whole(text("concurrency"), "concurrency");
    const rate = text("rateMax") === "" ? null : { max: whole(text("rateMax"), "rate"), perMs: parseDuration(text("ratePer") || "1s", "rate window") };
    await setQueueLimits(queue, { concurrency, rate }, { dataSource });
    overviewRead.forget();
    const said = `concurrency ${concurrency ?? "unlimited"}, rate ${rate ? `${rate.max} per ${rate.perMs} ms` : "unlimited"}`;
    return page(c, "Queues and schedules", views.message(`Queue ${queue}: ${said}.`, `${c.get("base")}/queues`));
  });
  app.post("/logout", (c) => {
    c.header("Set-Cookie", `${SESSION_COOKIE}=; Path=${c.get("base") || "/"}; HttpOnly; SameSite=Strict; Max-Age=0`);
    return c.redirect(`${c.get("base")}/${guard.usesToken ? "login" : ""}`, 303);
  });
  app.post("/schedules/:name/:act{pause|resume}", async (c) => {
    const name = c.req.param("name");
    const found = await (c.req.param("act") === "pause" ? pauseSchedule : resumeSchedule)(name, { dataSource });
    overviewRead.forget();
    return page(c, "Queues and schedules", views.message(found ? `Schedule ${name} ${c.req.param("act") === "pause" ? "paused" : "resumed"}.` : "No such schedule.", `${c.get("base")}/queues`));
  });

  app.notFound((c) => c.text("not found", 404));
  app.onError((err, c) => {
    if (err instanceof OrmqError) return c.text(`bad request: ${err.message}`, 400);
    options.logger?.error({ err }, "dashboard request failed");
    return c.text("internal error (see the server's log)", 500);
  });
  return app;
}

/** The filter of a query (or form), with the inputs of its type's own columns. */
function filterOf(registry: TaskRegistry, query: Record<string, string>): { fields: views.FieldInput[]; filter: TaskFilter } {
  const type = query.type ? registry.byKey.get(query.type) : undefined;
  const fields = type ? fieldInputs(type.metadata, query) : [];
  return { fields, filter: taskFilterOf(query, fields) };
}

/** A filter from query (or form) fields: status, type, queue, createdFrom/Before, and f.<prop>[.min|.max]. */
function taskFilterOf(query: Record<string, string>, fields: views.FieldInput[]): TaskFilter {
  const filter: TaskFilter = {};
  if (query.status) {
    if (!TASK_STATUSES.includes(query.status as never)) throw new InvalidOptionError(`unknown status ${JSON.stringify(query.status)}`);
    filter.status = query.status as never;
  }
  if (query.type) filter.type = query.type;
  if (query.queue) filter.queue = query.queue;
  const from = parseFilterDate(query.createdFrom, "created from");
  const before = parseFilterDate(query.createdBefore, "created before");
  if (from) filter.createdFrom = from;
  if (before) filter.createdBefore = before;
  const known = new Set(fields.map((f) => f.name));
  for (const key of Object.keys(query)) {
    const m = /^f\.([^.]+)(?:\.(min|max))?$/.exec(key);
    if (!m) continue;
    if (!known.has(m[1])) throw new InvalidOptionError(`unknown filter column ${JSON.stringify(m[1])}${query.type ? ` for type ${JSON.stringify(query.type)}` : " (choose a type first)"}`);
  }
  for (const f of fields) {
    let condition: FieldCondition | undefined;
    if (f.kind === "number" && (f.min || f.max)) condition = { ...(f.min ? { min: f.min } : {}), ...(f.max ? { max: f.max } : {}) };
    else if (f.kind !== "number" && f.value) condition = f.value;
    if (condition !== undefined) (filter.fields ??= {})[f.name] = condition;
  }
  return filter;
}

/** The filter inputs of a class's own columns (see filterableColumns), with the values the query gives. */
function fieldInputs(metadata: EntityMetadata, query: Record<string, string>): views.FieldInput[] {
  return filterableColumns(metadata).map(({ name, kind }) => ({ name, kind, value: query[`f.${name}`], min: query[`f.${name}.min`], max: query[`f.${name}.max`] }));
}

/** The URL's query as an object (the last of repeated names). */
function searchParams(c: Context<Env>): Record<string, string> {
  return Object.fromEntries(new URL(c.req.url).searchParams);
}

function secure(c: Context<Env>): boolean {
  return c.req.header("x-forwarded-proto") === "https" || (c.env.incoming.socket as { encrypted?: boolean }).encrypted === true;
}

/**
 * One read shared by every caller for `ttlMs` (and by callers while it runs). A read that takes
 * long is made less often: at least LOAD_FACTOR times its own duration apart, so that an open
 * overview keeps the database busy for at most about 1/LOAD_FACTOR of the time (its counts scan
 * the whole table: 0.8 s at a million tasks, measured).
 */
function sharedRead<T>(read: () => Promise<T>, ttlMs: number): (() => Promise<T>) & { forget(): void } {
  let pending: Promise<T> | undefined;
  let at = 0;
  let lastMs = 0;
  const get = () => {
    if (!pending || Date.now() - at >= Math.max(ttlMs, lastMs * LOAD_FACTOR)) {
      const started = (at = Date.now());
      pending = read().then(
        (value) => ((lastMs = Date.now() - started), value),
        (err: unknown) => {
          pending = undefined;
          throw err;
        },
      );
    }
    return pending;
  };
  return Object.assign(get, { forget: () => (pending = undefined) });
}

/** See sharedRead. */
const LOAD_FACTOR = 20;
