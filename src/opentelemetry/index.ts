/**
 * `ormq/opentelemetry`: traces and metrics through OpenTelemetry's API (`@opentelemetry/api`, an
 * optional peer dependency), on the client's middleware and events (see docs/observability.md):
 *
 *   const uninstall = instrumentOrmq(dataSource);
 *
 * - a PRODUCER span for each enqueue (`create <queue>`), whose context is written on the task's
 *   row (`trace_context`), so the attempts of a task enqueued in one request, its retries and its
 *   children are traced into that request;
 * - a CONSUMER span for each attempt (`process <queue>`), a child of the enqueue's span (or, with
 *   `parent: "link"`, a new trace linked to it), with the attempt's error recorded;
 * - metrics: `messaging.process.duration`, `ormq.attempts` by outcome, `ormq.queue.lag`, and the
 *   gauges `ormq.tasks.ready` and `ormq.tasks.oldest_ready_age` read from the database.
 * Attribute names follow OpenTelemetry's messaging conventions (`messaging.system` = "ormq",
 * `messaging.destination.name` = the queue). Without a registered SDK the API's no-op tracer and
 * meter make all of it nearly free; without instrumentOrmq nothing of it runs at all.
 */
import { context as otelContext, metrics, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Link, type MeterProvider, type SpanContext, type TracerProvider } from "@opentelemetry/api";
import type { DataSource } from "typeorm";
import type { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { getReadiness } from "../admin/stats";
import { ormqFor } from "../client/client";
import type { OrmqEventMap } from "../client/events";
import type { Middleware } from "../client/middleware";
import { OrmqConfigurationError, toError } from "../errors";
import { readTraceContext, writeTraceContext } from "./traceContext";

export { readTraceContext, writeTraceContext } from "./traceContext";

/** Options of `instrumentOrmq`. */
export interface OpenTelemetryOptions {
  /** Default: the global tracer provider (the one your SDK registered). */
  tracerProvider?: TracerProvider;
  /** Default: the global meter provider. */
  meterProvider?: MeterProvider;
  /**
   * How an attempt's span relates to its enqueue's: "child" (default: one trace from the request
   * through every attempt) or "link" (each attempt a trace of its own, linked to the enqueue's).
   */
  parent?: "child" | "link";
  /** Report the ready-task gauges, read from the database when collected (default true). */
  queueGauges?: boolean;
}

const SYSTEM = "ormq";
/** How long one database read serves the gauges (a collection reads both at once). */
const GAUGE_READ_MS = 1_000;
/** Attempts whose children may still be enqueued at their commit: the most remembered at once. */
const MAX_REMEMBERED = 10_000;

/**
 * Instruments `dataSource`'s enqueues and attempts in this process; returns the function that
 * removes it. Instrumenting the same DataSource twice is refused (every span would be doubled).
 */
export function instrumentOrmq(dataSource: DataSource, options: OpenTelemetryOptions = {}): () => void {
  const client = ormqFor(dataSource);
  if (instrumented.has(client)) throw new OrmqConfigurationError("instrumentOrmq: this DataSource is instrumented already");
  const mode = options.parent ?? "child";
  if (mode !== "child" && mode !== "link") throw new OrmqConfigurationError('instrumentOrmq: `parent` must be "child" or "link"');
  const tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer("ormq");
  const meterProvider = options.meterProvider ?? metrics.getMeterProvider();
  const meter = meterProvider.getMeter("ormq");
  // With no SDK, the API's tracer and meter do nothing, but calling them, and a middleware around
  // every attempt at all, still costs something a task: with neither, nothing is installed. The
  // global tracer provider is a proxy an SDK can register behind later (looked at again once a
  // second, and the middleware installed then); a meter taken from the API's no-op provider stays
  // a no-op (call instrumentOrmq after your SDK has started).
  const metering = options.meterProvider !== undefined || !isNoop(meterProvider);
  let tracing = false;
  const tracingNow = () => options.tracerProvider !== undefined || !isNoop(trace.getTracerProvider());
  const processDuration = meter.createHistogram("messaging.process.duration", { unit: "s", description: "How long task attempts ran (run() and its middleware)." });
  const attempts = meter.createCounter("ormq.attempts", { description: "Task attempts whose outcome was written, by outcome." });
  const lag = meter.createHistogram("ormq.queue.lag", { unit: "s", description: "From a task's due time to its attempt's start." });
  // The span of each attempt under way, by task id: its children are written at the attempt's
  // commit, after run() (and this middleware) returned, and take their context from it.
  const attemptSpans = new Map<string, SpanContext>();
  const typeOf = typeKeys(dataSource);

  const middleware: Middleware = {
    enqueue: async (task, next) => {
      if (!tracing) return next();
      const parentSpan = task.parentId !== null && task.parentId !== undefined ? attemptSpans.get(String(task.parentId)) : undefined;
      const parent = parentSpan ? trace.setSpanContext(otelContext.active(), parentSpan) : otelContext.active();
      const span = tracer.startSpan("create", { kind: SpanKind.PRODUCER, attributes: { "messaging.system": SYSTEM, "messaging.operation.type": "create", "messaging.operation.name": "create" } }, parent);
      try {
        await next();
        const queue = String(task.queue);
        span.updateName(`create ${queue}`);
        span.setAttributes({ "messaging.destination.name": queue, "messaging.ormq.task.type": typeOf(task) });
        // A context the caller set is kept (a task re-enqueued on another's behalf, say).
        if (readTraceContext(task.traceContext) === undefined) task.traceContext = writeTraceContext(span.spanContext());
      } catch (err) {
        failed(span, err);
        throw err;
      } finally {
        span.end();
      }
    },
    run: async (task, ctx, next) => {
      const queue = String(task.queue);
      const type = typeOf(task);
      const enqueued = readTraceContext(task.traceContext);
      const base: Context = enqueued && mode === "child" ? trace.setSpanContext(ROOT_CONTEXT, enqueued) : otelContext.active();
      const links: Link[] = enqueued && mode === "link" ? [{ context: enqueued }] : [];
      const attributes: Attributes = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": queue,
        "messaging.message.id": String(task.id),
        "messaging.ormq.task.type": type,
        "messaging.ormq.task.attempt": ctx.attempt,
      };
      const startedAt = performance.now();
      if (task.runAt instanceof Date) lag.record(Math.max(0, Date.now() - task.runAt.getTime()) / 1000, { "messaging.system": SYSTEM, "messaging.destination.name": queue, "messaging.ormq.task.type": type });
      const span = tracer.startSpan(`process ${queue}`, { kind: SpanKind.CONSUMER, attributes, links }, base);
      remember(attemptSpans, String(task.id), span.spanContext());
      let errorType: string | undefined;
      try {
        return await otelContext.with(trace.setSpan(base, span), next);
      } catch (err) {
        errorType = toError(err).name || "Error";
        failed(span, err);
        throw err;
      } finally {
        span.end();
        processDuration.record((performance.now() - startedAt) / 1000, {
          "messaging.system": SYSTEM,
          "messaging.operation.name": "process",
          "messaging.destination.name": queue,
          "messaging.ormq.task.type": type,
          ...(errorType ? { "error.type": errorType } : {}),
        });
      }
    },
  };
  const finished = (e: OrmqEventMap["task:finished"]) => {
    attemptSpans.delete(e.taskId);
    if (!metering) return;
    attempts.add(1, { "messaging.system": SYSTEM, "messaging.destination.name": e.queue, "messaging.ormq.task.type": e.type, "messaging.ormq.outcome": e.outcome });
  };

  // Installed while there is something to record: always with a meter, while an SDK is registered without.
  let uninstall: (() => void) | undefined;
  const sync = () => {
    tracing = tracingNow();
    const on = tracing || metering;
    if (on && !uninstall) {
      const removeMiddleware = client.use(middleware);
      const removeListener = client.on("task:finished", finished);
      uninstall = () => (removeMiddleware(), removeListener());
    } else if (!on && uninstall) {
      uninstall();
      uninstall = undefined;
      attemptSpans.clear();
    }
  };
  sync();
  const watch = options.tracerProvider === undefined ? setInterval(sync, SDK_CHECK_MS).unref() : undefined;

  let removeGauges = () => {};
  if (options.queueGauges !== false && metering) {
    const ready = meter.createObservableGauge("ormq.tasks.ready", { description: "Tasks pending and due, by queue." });
    const oldest = meter.createObservableGauge("ormq.tasks.oldest_ready_age", { unit: "s", description: "How long the oldest ready task of each queue has waited." });
    let cached: { at: number; read: ReturnType<typeof getReadiness> } | undefined;
    const read = () => {
      if (!cached || performance.now() - cached.at > GAUGE_READ_MS) cached = { at: performance.now(), read: getReadiness({ dataSource }) };
      return cached.read;
    };
    const observe = async (result: import("@opentelemetry/api").BatchObservableResult) => {
      let queues: Awaited<ReturnType<typeof getReadiness>>["queues"];
      try {
        queues = (await read()).queues;
      } catch {
        return; // a database that cannot be read now reports nothing this time, as prom-client's gauges do
      }
      for (const q of queues) {
        result.observe(ready, q.ready, { "messaging.system": SYSTEM, "messaging.destination.name": q.queue });
        result.observe(oldest, q.oldestReadyAgeMs / 1000, { "messaging.system": SYSTEM, "messaging.destination.name": q.queue });
      }
    };
    meter.addBatchObservableCallback(observe, [ready, oldest]);
    removeGauges = () => meter.removeBatchObservableCallback(observe, [ready, oldest]);
  }

  instrumented.add(client);
  return () => {
    if (watch) clearInterval(watch);
    uninstall?.();
    uninstall = undefined;
    removeGauges();
    attemptSpans.clear();
    instrumented.delete(client);
  };
}

const instrumented = new WeakSet<object>();
/** How often a global tracer provider is looked at for an SDK registered since. */
const SDK_CHECK_MS = 1_000;

/**
 * Whether a provider is the API's no-op (no SDK registered): the global tracer provider is a proxy
 * whose delegate is the no-op one until an SDK registers; the global meter provider is the no-op
 * one itself.
 */
function isNoop(provider: TracerProvider | MeterProvider): boolean {
  const delegate = (provider as { getDelegate?: () => unknown }).getDelegate?.() ?? provider;
  const name = (delegate as { constructor?: { name?: string } }).constructor?.name;
  return name === "NoopTracerProvider" || name === "NoopMeterProvider";
}

/** A task's type key (its class's discriminator value), from the DataSource's metadata. */
function typeKeys(dataSource: DataSource): (task: BaseTaskEntity) => string {
  const keys = new Map<unknown, string>();
  return (task) => {
    let key = keys.get(task.constructor);
    if (key === undefined) {
      key = dataSource.hasMetadata(task.constructor) ? String(dataSource.getMetadata(task.constructor).discriminatorValue ?? task.constructor.name) : task.constructor.name;
      keys.set(task.constructor, key);
    }
    return key;
  };
}

function failed(span: import("@opentelemetry/api").Span, err: unknown): void {
  const error = toError(err);
  span.recordException(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
}

/** Remembers an attempt's span for its children, forgetting the oldest past the bound (a lost attempt never finishes). */
function remember(spans: Map<string, SpanContext>, id: string, span: SpanContext): void {
  spans.delete(id);
  spans.set(id, span);
  if (spans.size > MAX_REMEMBERED) spans.delete(spans.keys().next().value as string);
}
