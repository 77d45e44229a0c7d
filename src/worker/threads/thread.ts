/**
 * A task thread: piscina's entry point. It loads the user's bootstrap module once (its DataSource
 * and, optionally, a tsyringe container), then runs one attempt per call: it hydrates the claimed
 * row into the task's class, builds a context on the thread's own DataSource and container, and
 * replies with the value or the error. The claim, the outcome and the hooks stay with the worker.
 */
import "reflect-metadata";
import { workerData } from "node:worker_threads";
import { container as rootContainer, type DependencyContainer } from "tsyringe";
import type { DataSource } from "typeorm";
import { OrmqConfigurationError } from "../../errors";
import type { Logger } from "../../logger";
import { loadDataSourceModule } from "../../moduleLoader";
import { TaskRegistry } from "../../registry";
import { createTaskContext } from "../context";
import { hydrate } from "../hydrate";
import { fromRecord, toRecord, type LogLine, type ProgressLine, type ThreadReply, type ThreadTask } from "./messages";
import { checkProgress } from "../progress";

interface Booted {
  dataSource: DataSource;
  container: DependencyContainer;
  registry: TaskRegistry;
}

const settings = workerData as { bootstrap: string };
let booted: Promise<Booted> | undefined;

async function boot(): Promise<Booted> {
  const loaded = loadDataSourceModule(settings.bootstrap, "bootstrap");
  if (!loaded.dataSource.isInitialized) await loaded.dataSource.initialize();
  return { dataSource: loaded.dataSource, container: loaded.container ?? rootContainer, registry: TaskRegistry.for(loaded.dataSource) };
}

export default async function runAttempt(message: ThreadTask): Promise<ThreadReply> {
  const controller = new AbortController();
  message.port.on("message", (reason) => controller.abort(fromRecord(reason)));
  try {
    // A failed start (database down) is retried by the next attempt rather than kept forever.
    booted ??= boot().catch((err) => {
      booted = undefined;
      throw err;
    });
    const { dataSource, container, registry } = await booted;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require(message.module);
    const type = registry.byKey.get(message.type);
    if (!type) {
      throw new OrmqConfigurationError(`task type ${message.type} is not among the entities of the bootstrap module's DataSource (${settings.bootstrap})`);
    }
    const task = hydrate(type.metadata, dataSource.driver, message.row);
    const ctx = createTaskContext({
      attempt: message.attempt,
      signal: controller.signal,
      logger: () => portLogger(message.port, {}),
      dataSource,
      workerId: message.workerId,
      scheduledFor: task.scheduleName ? task.runAt : null,
      // Checked here, so a bad value throws in the task; recorded (and throttled) by the worker.
      progress: () => ({
        report: async (fraction, text) => {
          message.port.postMessage({ progress: checkProgress(fraction, text) } satisfies ProgressLine);
        },
      }),
      container,
    });
    return { ok: true, value: await task.run(ctx) };
  } catch (err) {
    return { ok: false, error: toRecord(err) };
  } finally {
    message.port.close();
  }
}

/**
 * The task's logger in a thread: each line goes back over the attempt's port and is written by the
 * worker's own logger (with the task's fields), so thread tasks log where every other task does.
 */
function portLogger(port: ThreadTask["port"], bindings: Record<string, unknown>): Logger {
  const send = (level: LogLine["level"]) => (obj: object, msg?: string) => {
    const fields: Record<string, unknown> = { ...bindings, ...obj };
    // Errors do not survive the structured clone with their fields: send them as records.
    for (const [key, value] of Object.entries(fields)) if (value instanceof Error) fields[key] = toRecord(value);
    port.postMessage({ level, obj: fields, msg } satisfies LogLine);
  };
  return {
    debug: send("debug"),
    info: send("info"),
    warn: send("warn"),
    error: send("error"),
    child: (more) => portLogger(port, { ...bindings, ...more }),
  };
}
