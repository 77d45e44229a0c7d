#!/usr/bin/env node
/**
 * The `ormq` binary. Every failure prints one line on stderr and exits 1: `ormq: <message>` for
 * errors the user can act on (a bad flag, a missing module, an unknown task: ormq's own errors),
 * `ormq: <name>: <first line of the message>` for anything else (a driver's error, a bug).
 * Control characters in the line are escaped. With ORMQ_DEBUG=1 the full error follows (stack,
 * cause, the driver's fields).
 */
import "reflect-metadata";
import { inspect } from "node:util";
import { OrmqError } from "../errors";
import { escapeControl } from "./output";
import { buildProgram } from "./program";

/** A message longer than this is cut: it is one line on a terminal, not a dump. */
const MAX_LINE_CHARS = 2_000;

let exitCode: number | undefined;
const program = buildProgram((code) => (exitCode = code));

/** Prints `err` as one line (and in full with ORMQ_DEBUG=1), then exits 1. */
function fail(err: unknown): never {
  process.stderr.write(`ormq: ${oneLine(err)}\n`);
  if (process.env.ORMQ_DEBUG === "1") process.stderr.write(inspect(err, { depth: 4 }) + "\n");
  process.exit(1);
}

/** The line for an error. Never throws, whatever was thrown (getters that throw included). */
function oneLine(err: unknown): string {
  let text: string;
  try {
    if (err instanceof OrmqError) text = String(err.message);
    else if (err instanceof Error) {
      const message = String(err.message ?? "").split("\n")[0] || aggregateMessage(err);
      text = `${String(err.name || "Error")}: ${message}`;
    } else text = `non-Error thrown: ${String(err)}`;
  } catch {
    text = "an error that cannot be printed (set ORMQ_DEBUG=1 for what is known of it)";
  }
  if (text.length > MAX_LINE_CHARS) text = `${text.slice(0, MAX_LINE_CHARS)}… [${text.length - MAX_LINE_CHARS} more characters]`;
  return escapeControl(text);
}

/** An AggregateError (a connection refused on each address) has an empty message of its own. */
function aggregateMessage(err: Error): string {
  const first = (err as { errors?: unknown[] }).errors?.[0];
  return first instanceof Error ? String(first.message).split("\n")[0] : "(no message)";
}

// A failure outside the command's promise (an error event of a pool, a timer) ends the same way.
process.on("uncaughtException", fail);

program.parseAsync(process.argv).then(
  () => {
    process.exitCode = exitCode ?? 0;
    // Lingering handles (a pg pool's idle timer, a prettifier) must not keep a finished command alive.
    setImmediate(() => process.exit()).unref();
  },
  fail,
);
