/**
 * The trace context a task row carries (`trace_context`): W3C `traceparent` and `tracestate`, as
 * JSON. Written and read here, without the application's propagator: the row's format is ormq's
 * and must not change with how an application configures its SDK. Read leniently: anything that
 * is not a valid context (a user's value, a truncated one) is no context, never a failure.
 */
import { createTraceState, isSpanContextValid, TraceFlags, type SpanContext } from "@opentelemetry/api";

/** Longest tracestate kept (W3C's limit is 512 characters); the column holds 1,024. */
const MAX_TRACESTATE = 512;

/** A span context as the row stores it, or null when there is nothing valid to store. */
export function writeTraceContext(span: SpanContext): string | null {
  if (!isSpanContextValid(span)) return null;
  const flags = (span.traceFlags & 0xff).toString(16).padStart(2, "0");
  const carrier: { traceparent: string; tracestate?: string } = { traceparent: `00-${span.traceId}-${span.spanId}-${flags}` };
  const state = span.traceState?.serialize();
  if (state && state.length <= MAX_TRACESTATE) carrier.tracestate = state;
  return JSON.stringify(carrier);
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The span context a row's `trace_context` holds, or undefined (none, or not a valid one). */
export function readTraceContext(stored: unknown): SpanContext | undefined {
  if (typeof stored !== "string" || stored.length === 0 || stored.length > 1024) return undefined;
  let carrier: unknown;
  try {
    carrier = JSON.parse(stored);
  } catch {
    return undefined;
  }
  if (!carrier || typeof carrier !== "object") return undefined;
  const { traceparent, tracestate } = carrier as { traceparent?: unknown; tracestate?: unknown };
  const match = typeof traceparent === "string" ? TRACEPARENT.exec(traceparent) : null;
  if (!match) return undefined;
  const context: SpanContext = { traceId: match[1], spanId: match[2], traceFlags: parseInt(match[3], 16) & TraceFlags.SAMPLED, isRemote: true };
  if (typeof tracestate === "string" && tracestate.length <= MAX_TRACESTATE) {
    try {
      context.traceState = createTraceState(tracestate);
    } catch {
      // an unreadable tracestate is dropped; the trace still links
    }
  }
  return isSpanContextValid(context) ? context : undefined;
}
