/**
 * The worker's side of `static executor = "thread"`: a piscina pool of worker threads, each of
 * which loads the user's bootstrap module once and runs one attempt at a time. run() on the event
 * loop would stall heartbeats, cancel checks and every other task while a CPU-bound task computes;
 * in a thread it stalls nothing but its own thread.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { MessageChannel } from "node:worker_threads";
import { Piscina } from "piscina";
import type { BaseTaskEntity } from "../../../entities/BaseTaskEntity";
import type { TaskRow } from "../../dialect";
import { OrmqConfigurationError } from "../../errors";
import type { TaskContext } from "../context";
import { fromRecord, PORT_END, relayLine, TERMINATE_AFTER_ABORT_MS, toRecord, type LogLine, type ProgressLine, type RemoteReply, type ThreadTask } from "../remote/messages";

/** How long to wait for a thread's last log lines after its reply (they normally come at once; a terminated thread sends none). */
const PORT_DRAIN_MS = 1_000;

export class ThreadPool {
  private readonly pool: Piscina;

  constructor(options: { size: number; bootstrap: string }) {
    // Threads run compiled JavaScript: the pool's entry point is the compiled thread.js.
    const filename = join(__dirname, "thread.js");
    if (!existsSync(filename)) {
      throw new OrmqConfigurationError(`the thread executor needs ormq's compiled JavaScript (${filename} is missing)`);
    }
    this.pool = new Piscina({
      filename,
      minThreads: 0,
      maxThreads: options.size,
      // One attempt per thread at a time: a thread task is assumed to keep its thread busy.
      concurrentTasksPerWorker: 1,
      idleTimeout: 60_000,
      workerData: { bootstrap: resolve(process.cwd(), options.bootstrap) },
    });
  }

  /** Runs `task`'s run() in a thread; resolves with its value or rejects with its error. */
  async run(task: BaseTaskEntity, row: TaskRow, ctx: TaskContext): Promise<unknown> {
    const cls = task.constructor as typeof BaseTaskEntity;
    const { port1, port2 } = new MessageChannel();
    const terminate = new AbortController();
    let terminateTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      port1.postMessage(toRecord(ctx.signal.reason));
      terminateTimer = setTimeout(() => terminate.abort(), TERMINATE_AFTER_ABORT_MS);
    };
    // The thread ends with PORT_END after its last line; until then lines may still be on the way.
    let markDrained!: () => void;
    const drained = new Promise<void>((resolve) => (markDrained = resolve));
    port1.on("message", (line: LogLine | ProgressLine | typeof PORT_END) => {
      if ("end" in line) markDrained();
      else relayLine(ctx, line);
    });
    if (ctx.signal.aborted) onAbort();
    else ctx.signal.addEventListener("abort", onAbort, { once: true });
    const message: ThreadTask = {
      row,
      type: String(row.type),
      module: cls.module!,
      attempt: ctx.attempt,
      workerId: ctx.workerId,
      port: port2,
    };
    try {
      const reply: RemoteReply = await this.pool.run(message, { transferList: [port2] as never, signal: terminate.signal });
      if (reply.ok) return reply.value;
      throw fromRecord(reply.error);
    } catch (err) {
      // The thread was terminated: what ended the attempt is the signal's reason.
      if (terminate.signal.aborted) throw ctx.signal.reason;
      throw err;
    } finally {
      clearTimeout(terminateTimer);
      ctx.signal.removeEventListener("abort", onAbort);
      await Promise.race([drained, sleep(PORT_DRAIN_MS, undefined, { ref: false })]);
      port1.close();
    }
  }

  /** Stops the threads (their DataSources close with them). */
  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
