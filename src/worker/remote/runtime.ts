/**
 * The far side of a thread or process task: what runs an attempt's run() away from the worker.
 * It loads the user's bootstrap module once (its DataSource and, optionally, a tsyringe
 * container), then for each attempt hydrates the claimed row into the task's class, builds a
 * context on its own DataSource and container, and replies with the value or the error. The
 * claim, the outcome and the hooks stay with the worker; log lines and progress go back to it.
 */
import { container as rootContainer, type DependencyContainer } from "tsyringe";
import type { DataSource } from "typeorm";
import { OrmqConfigurationError, toError } from "../../errors";
import type { Logger } from "../../logger";
import { loadDataSourceModule } from "../../moduleLoader";
import { TaskRegistry } from "../../registry";
import { createTaskContext, scheduledForOf } from "../context";
import { dependenciesOf, dependencyCounts } from "../../dialect/dependencyStatements";
import { hydrate } from "../hydrate";
import { checkProgress } from "../progress";
import { toRecord, type LogLine, type ProgressLine, type RemoteReply, type RemoteTask } from "./messages";
import { ormqFor } from "../../client/client";

interface Booted {
  dataSource: DataSource;
  container: DependencyContainer;
  registry: TaskRegistry;
}

export class RemoteRuntime {
  private booted: Promise<Booted> | undefined;

  constructor(private readonly bootstrap: string) {}

  /** Starts loading the bootstrap module and opening its DataSource, before the first attempt asks. */
  warmUp(): void {
    this.started().catch(() => undefined); // the attempt that waits for it hears the error
  }

  /** Runs one attempt. Never throws: whatever happens is the reply. */
  async run(message: RemoteTask, signal: AbortSignal, send: (line: LogLine | ProgressLine) => void): Promise<RemoteReply> {
    try {
      // An attempt that times out or is cancelled while the DataSource still opens ends then; the
      // start goes on for the next attempt.
      const { dataSource, container, registry } = await untilAborted(this.started(), signal);
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require(message.module);
      const type = registry.byKey.get(message.type);
      if (!type) {
        throw new OrmqConfigurationError(`task type ${message.type} is not among the entities of the bootstrap module's DataSource (${this.bootstrap})`);
      }
      const task = hydrate(type.metadata, dataSource.driver, message.row);
      const ctx = createTaskContext({
        attemptNumber: message.attempt,
        taskId: task.id,
        dependencies: (id) => dependenciesOf(dataSource.manager, id),
        dependencyCounts: (id) => dependencyCounts(dataSource.manager, id),
        signal,
        logger: () => lineLogger(send, {}),
        dataSource,
        workerId: message.workerId,
        scheduledFor: scheduledForOf(task),
        // Checked here, so a bad value throws in the task; recorded (and throttled) by the worker.
        progress: () => ({
          report: async (fraction, text) => send({ progress: checkProgress(fraction, text) }),
        }),
        container,
      });
      return { ok: true, value: await task.run(ctx) };
    } catch (err) {
      return { ok: false, error: toRecord(err) };
    }
  }

  /** Closes the DataSource, if it was opened. */
  async close(): Promise<void> {
    const booted = await this.booted?.catch(() => undefined);
    if (booted?.dataSource.isInitialized) await booted.dataSource.destroy();
  }

  private started(): Promise<Booted> {
    // A failed start (database down) is retried by the next attempt rather than kept forever.
    this.booted ??= this.boot().catch((err) => {
      this.booted = undefined;
      throw err;
    });
    return this.booted;
  }

  private async boot(): Promise<Booted> {
    const loaded = loadDataSourceModule(this.bootstrap, "bootstrap");
    if (!loaded.dataSource.isInitialized) await loaded.dataSource.initialize();
    return { dataSource: loaded.dataSource, container: loaded.container ?? rootContainer, registry: ormqFor(loaded.dataSource).registry };
  }
}

/**
 * The task's logger away from the worker: each line goes back to the worker and is written by the
 * worker's own logger (with the task's fields), so these tasks log where every other task does.
 */
function lineLogger(send: (line: LogLine) => void, bindings: Record<string, unknown>): Logger {
  const line = (level: LogLine["level"]) => (obj: object, msg?: string) => {
    const fields: Record<string, unknown> = { ...bindings, ...obj };
    // Errors do not survive the structured clone with their fields: send them as records.
    for (const [key, value] of Object.entries(fields)) if (value instanceof Error) fields[key] = toRecord(value);
    try {
      send({ level, obj: fields, msg });
    } catch {
      // A field the structured clone cannot carry (a function, say, in a logged config): logging
      // must not throw in the task, so such fields go as a description.
      send({ level, obj: sendable(fields), msg });
    }
  };
  return {
    debug: line("debug"),
    info: line("info"),
    warn: line("warn"),
    error: line("error"),
    child: (more) => lineLogger(send, { ...bindings, ...more }),
  };
}

/** `fields` with each value the structured clone refuses replaced by a description of it. */
function sendable(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    try {
      out[key] = structuredClone(value);
    } catch {
      out[key] = `[not sendable: ${typeof value}]`;
    }
  }
  return out;
}

/** `work`, or the signal's reason if it aborts first. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(toError(err));
      },
    );
  });
}
