#!/usr/bin/env node
/**
 * The `ormq` binary. Errors the user can act on (a bad flag, a missing module, an unknown task)
 * print as one line naming the problem and exit 1; anything else prints its stack.
 */
import "reflect-metadata";
import { OrmqError } from "../errors";
import { buildProgram } from "./program";

let exitCode: number | undefined;
const program = buildProgram((code) => (exitCode = code));

program.parseAsync(process.argv).then(
  () => {
    process.exitCode = exitCode ?? 0;
    // Lingering handles (a pg pool's idle timer, a prettifier) must not keep a finished command alive.
    setImmediate(() => process.exit()).unref();
  },
  (err: unknown) => {
    if (err instanceof OrmqError) process.stderr.write(`ormq: ${err.message}\n`);
    else process.stderr.write(`ormq: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
