/**
 * ormq/opentelemetry with the SDK's in-memory exporters: a task enqueued in a request's span is
 * traced into its attempts (retries too) and its children through the row's trace context; spans
 * follow the messaging conventions; hostile trace contexts never fail an attempt; the metrics
 * report attempts, run time, lag and ready tasks. On every database.
 */
import { context, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { MeterProvider, MetricReader, type MetricData } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import fc from "fast-check";
import { ChildEntity, Column, type DataSource } from "typeorm";
import { BaseTaskEntity, enqueueMany, fixedDelay, processN, type TaskContext } from "../src";
import { instrumentOrmq, readTraceContext, writeTraceContext } from "../src/opentelemetry";
import { OrmqConfigurationError } from "../src/errors";
import { ormqFor } from "../src/client/client";
import { openDataSource, useTestDatabase, WITH_MARIADB, type TestDb } from "./support/db";

@ChildEntity("otel_step")
class OtelStep extends BaseTaskEntity {
  static maxAttempts = 2;
  static retry = fixedDelay(0);
  @Column({ type: "varchar", length: 20, nullable: true })
  mode!: "ok" | "fail-first" | "children" | null;
  async run(ctx: TaskContext) {
    if (this.mode === "fail-first" && ctx.attempt === 1) throw new TypeError("first attempt fails");
    if (this.mode === "children") ctx.enqueue([OtelStep.create({ mode: "ok", queue: "kids" })]);
    return "ok";
  }
}

/** Never run in these tests: the ready gauge counts it. */
@ChildEntity("otel_idle")
class OtelIdle extends BaseTaskEntity {
  run() {}
}

class TestReader extends MetricReader {
  protected async onShutdown() {}
  protected async onForceFlush() {}
}

const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager().enable();
beforeAll(() => context.setGlobalContextManager(contextManager));
afterAll(() => {
  context.disable();
  propagation.disable();
});

const silent = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };
const spansNamed = (prefix: string) => exporter.getFinishedSpans().filter((s) => s.name.startsWith(prefix));
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

/** Resolves once `check()` holds (polled every 20 ms, up to 5 s). */
async function until(check: () => boolean): Promise<void> {
  for (const deadline = Date.now() + 5_000; !check(); ) {
    if (Date.now() > deadline) throw new Error("the condition did not hold within 5 s");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.each(WITH_MARIADB)("ormq/opentelemetry on %s", (dialect) => {
  let ds: DataSource;
  let db: TestDb;
  let uninstall: () => void;
  let reader: TestReader;
  useTestDatabase(dialect, (opened) => ({ ds, db } = opened), [OtelStep, OtelIdle]);
  beforeAll(() => {
    reader = new TestReader();
    uninstall = instrumentOrmq(ds, { tracerProvider, meterProvider: new MeterProvider({ readers: [reader] }) });
  });
  afterAll(() => uninstall());
  beforeEach(() => exporter.reset());

  it("a task enqueued in a request's span is traced into its attempts, a failed one with its error", async () => {
    const tracer = tracerProvider.getTracer("app");
    const task = await tracer.startActiveSpan("POST /orders", async (request) => {
      try {
        return await OtelStep.create({ mode: "fail-first" }).save();
      } finally {
        request.end();
      }
    });
    expect(readTraceContext(task.traceContext)).toBeDefined();
    await processN(OtelStep, 2, { dataSource: ds, logger: silent });
    const [request] = spansNamed("POST /orders");
    const [create] = spansNamed("create ");
    const runs = spansNamed("process ").sort((a, b) => Number(a.attributes["messaging.ormq.task.attempt"]) - Number(b.attributes["messaging.ormq.task.attempt"]));
    expect(create).toMatchObject({ name: "create default", kind: SpanKind.PRODUCER });
    expect(create.attributes).toMatchObject({ "messaging.system": "ormq", "messaging.operation.type": "create", "messaging.destination.name": "default", "messaging.ormq.task.type": "otel_step" });
    expect(parentOf(create)).toBe(request.spanContext().spanId);
    expect(runs).toHaveLength(2);
    for (const run of runs) {
      expect(run).toMatchObject({ name: "process default", kind: SpanKind.CONSUMER });
      expect(run.spanContext().traceId).toBe(request.spanContext().traceId);
      expect(parentOf(run)).toBe(create.spanContext().spanId);
      expect(run.attributes).toMatchObject({ "messaging.system": "ormq", "messaging.operation.type": "process", "messaging.destination.name": "default", "messaging.message.id": task.id });
    }
    expect(runs[0].status).toEqual({ code: SpanStatusCode.ERROR, message: "first attempt fails" });
    expect(runs[0].events.map((e) => e.name)).toEqual(["exception"]);
    expect(runs[1].status.code).toBe(SpanStatusCode.UNSET);
  });

  it("children enqueued by an attempt are traced under that attempt", async () => {
    await OtelStep.create({ mode: "children" }).save();
    await processN(OtelStep, 2, { dataSource: ds, logger: silent });
    const parentRun = spansNamed("process default").find((s) => s.attributes["messaging.destination.name"] === "default")!;
    const childCreate = spansNamed("create kids")[0];
    const childRun = spansNamed("process kids")[0];
    expect(parentOf(childCreate)).toBe(parentRun.spanContext().spanId);
    expect(parentOf(childRun)).toBe(childCreate.spanContext().spanId);
    expect(childRun.spanContext().traceId).toBe(parentRun.spanContext().traceId);
  });

  it("enqueueMany traces each task; hostile trace contexts on rows never fail an attempt", async () => {
    const hostile = fc.sample(
      fc.oneof(
        fc.string({ maxLength: 300 }),
        fc.json({ maxDepth: 2 }),
        fc.record({ traceparent: fc.string({ maxLength: 80 }), tracestate: fc.string({ maxLength: 600 }) }).map((o) => JSON.stringify(o)),
        fc.constant(JSON.stringify({ traceparent: "00-00000000000000000000000000000000-0000000000000000-01" })),
        fc.constant(JSON.stringify({ traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate: "=,=,\u0000" })),
      ).filter((v) => !v.includes("\u0000") && v.length <= 1024),
      40,
    );
    const tasks = hostile.map(() => OtelStep.create({ mode: "ok" }));
    const ids = await enqueueMany(tasks, { dataSource: ds });
    expect(tasks.every((t) => readTraceContext(t.traceContext) !== undefined)).toBe(true);
    expect(spansNamed("create default")).toHaveLength(hostile.length);
    // What a user (or anything) may write in the column afterwards.
    for (const [i, id] of ids.entries()) await ds.getRepository(OtelStep).update({ id }, { traceContext: hostile[i] });
    const summary = await processN(OtelStep, hostile.length, { dataSource: ds, logger: silent });
    expect(summary).toMatchObject({ succeeded: hostile.length, failed: 0 });
    expect(spansNamed("process ")).toHaveLength(hostile.length);
  });

  it("metrics: attempts by outcome, run time, lag, and the ready gauge read from the database", async () => {
    await OtelIdle.create({}).save();
    await OtelStep.create({ mode: "ok" }).save();
    await processN(OtelStep, 1, { dataSource: ds, logger: silent });
    const { resourceMetrics } = await reader.collect();
    const all = new Map<string, MetricData>(resourceMetrics.scopeMetrics.flatMap((s) => s.metrics.map((m) => [m.descriptor.name, m] as [string, MetricData])));
    const points = (name: string) => (all.get(name)?.dataPoints ?? []) as { attributes: Record<string, unknown>; value: unknown }[];
    const succeeded = points("ormq.attempts").find((p) => p.attributes["messaging.ormq.outcome"] === "succeeded" && p.attributes["messaging.ormq.task.type"] === "otel_step");
    expect(Number(succeeded?.value)).toBeGreaterThanOrEqual(1);
    expect(points("ormq.attempts").some((p) => p.attributes["messaging.ormq.outcome"] === "retried")).toBe(true);
    expect(points("messaging.process.duration").some((p) => p.attributes["error.type"] === "TypeError")).toBe(true);
    expect(points("ormq.queue.lag").length).toBeGreaterThan(0);
    expect(points("ormq.tasks.ready").find((p) => p.attributes["messaging.destination.name"] === "default")?.value).toBe(1);
  });

  it('parent: "link" makes each attempt a trace of its own, linked to the enqueue', async () => {
    uninstall();
    uninstall = instrumentOrmq(ds, { tracerProvider, parent: "link", queueGauges: false });
    await OtelStep.create({ mode: "ok" }).save();
    await processN(OtelStep, 1, { dataSource: ds, logger: silent });
    const [create] = spansNamed("create ");
    const [run] = spansNamed("process ");
    expect(run.spanContext().traceId).not.toBe(create.spanContext().traceId);
    expect(run.links.map((l) => l.context.spanId)).toEqual([create.spanContext().spanId]);
  });

  it("with no SDK registered it installs nothing, records nothing and writes no trace context; an SDK registered later is picked up", async () => {
    const bare = await openDataSource(db, [OtelStep, OtelIdle], {}, false);
    const off = instrumentOrmq(bare); // the global providers: the API's no-ops here
    try {
      // No middleware around enqueues or attempts: the drain pays nothing.
      expect(ormqFor(bare).middleware.hasRun || ormqFor(bare).middleware.hasEnqueue).toBe(false);
      const task = await bare.getRepository(OtelStep).save(OtelStep.create({ mode: "ok" }));
      expect(task.traceContext ?? null).toBeNull();
      expect(await processN(OtelStep, 1, { dataSource: bare, logger: silent })).toMatchObject({ succeeded: 1 });
      expect(exporter.getFinishedSpans()).toHaveLength(0);
      // An SDK registered afterwards: looked for once a second.
      trace.setGlobalTracerProvider(tracerProvider);
      await until(() => ormqFor(bare).middleware.hasRun);
      await bare.getRepository(OtelStep).save(OtelStep.create({ mode: "ok" }));
      expect(await processN(OtelStep, 1, { dataSource: bare, logger: silent })).toMatchObject({ succeeded: 1 });
      expect(spansNamed("create ")).toHaveLength(1);
      expect(spansNamed("process ")).toHaveLength(1);
    } finally {
      trace.disable();
      off();
      await bare.destroy();
    }
    expect(ormqFor(bare).middleware.hasRun).toBe(false);
  });

  it("instrumenting one DataSource twice is refused", () => {
    expect(() => instrumentOrmq(ds)).toThrow(new OrmqConfigurationError("instrumentOrmq: this DataSource is instrumented already"));
  });
});

describe("ormq/opentelemetry: the row's trace context", () => {
  it("round-trips a span context, and reads nothing from what is not one", () => {
    const span = { traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceFlags: 1 };
    const stored = writeTraceContext(span)!;
    expect(JSON.parse(stored)).toEqual({ traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" });
    expect(readTraceContext(stored)).toMatchObject({ ...span, isRemote: true });
    expect(writeTraceContext(trace.wrapSpanContext({ traceId: "0".repeat(32), spanId: "0".repeat(16), traceFlags: 0 }).spanContext())).toBeNull();
    fc.assert(fc.property(fc.anything(), (value) => readTraceContext(value) === undefined || typeof value === "string"));
  });
});
