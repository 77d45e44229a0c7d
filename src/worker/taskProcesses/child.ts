/**
 * A task process: what the process pool forks for `static executor = "process"` tasks. It runs
 * one attempt at a time through its RemoteRuntime, whose bootstrap module (the first argument) it
 * starts loading at once. The abort reason comes in as a message; log lines, progress and the
 * reply go back, numbered by attempt, the reply with what the process holds, so the worker can
 * recycle it past its mark. When the worker closes the channel (to retire it, or because the
 * worker died), it closes its DataSource and exits.
 *
 * It leads a process group of its own (the pool forks it detached), and it dies with its worker,
 * with its group, whatever its task is doing: see watchdog.ts.
 */
import "reflect-metadata";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { killOwnGroup, killRestOfGroup, workerGone } from "./group";
import { RemoteRuntime } from "../remote/runtime";
import { fromRecord, toRecord, type FromChild, type RemoteReply, type ToChild } from "../remote/messages";

/** After the channel closes, the longest the DataSource may take to close before the process exits anyway. */
const EXIT_AFTER_DISCONNECT_MS = 3_000;
/** The worker that forked this process. (`process.ppid` is read once, at start-up.) */
const workerPid = process.ppid;

/** Starts the watchdog thread (see watchdog.ts), compiled JavaScript beside this file, as this file is. */
function startWatchdog(): void {
  try {
    const watchdog = new Worker(join(__dirname, "watchdog.js"), { workerData: workerPid });
    watchdog.unref();
    watchdog.on("error", (err) => console.error(`ormq task process ${process.pid}: its watchdog thread failed; it may outlive its worker:`, err));
  } catch (err) {
    console.error(`ormq task process ${process.pid}: no watchdog thread; it may outlive its worker:`, err);
  }
}

startWatchdog();

const runtime = new RemoteRuntime(process.argv[2]);
runtime.warmUp();
let current: { run: number; controller: AbortController } | undefined;

function send(message: FromChild): void {
  if (process.connected) process.send!(message);
}

function reply(run: number, value: RemoteReply): void {
  let memory = { rssBytes: 0, heapUsedBytes: 0 };
  try {
    const { rss, heapUsed } = process.memoryUsage();
    memory = { rssBytes: rss, heapUsedBytes: heapUsed };
  } catch {
    // not readable (no file descriptors left): the reply matters more
  }
  try {
    send({ kind: "reply", run, reply: value, memory });
  } catch (err) {
    // A value the structured clone cannot carry (a function, a symbol): the attempt fails with why.
    const error = new TypeError(`run() returned a value that cannot be sent back to the worker: ${(err as Error).message}`);
    send({ kind: "reply", run, reply: { ok: false, error: toRecord(error) }, memory });
  }
}

process.on("message", (message: ToChild) => {
  if (message.kind === "abort") {
    if (current?.run === message.run) current.controller.abort(fromRecord(message.reason));
    return;
  }
  const attempt = { run: message.run, controller: new AbortController() };
  current = attempt;
  void runtime
    .run(message.task, attempt.controller.signal, (line) => {
      // Lines of this attempt only, while it runs: its leftovers must not land on the next one.
      if (current === attempt) send({ kind: "line", run: attempt.run, line });
    })
    .then((value) => {
      if (current === attempt) current = undefined;
      reply(attempt.run, value);
    });
});

process.on("disconnect", () => {
  const exit = () => {
    if (workerGone(workerPid)) killOwnGroup();
    // The channel closes before a dying worker's children are handed to another parent, so
    // workerGone() can still say no here when the worker was killed: what the tasks started goes
    // either way (a retired process's leftovers would be killed by the pool after it exits).
    else killRestOfGroup();
    process.exit(0);
  };
  setTimeout(exit, EXIT_AFTER_DISCONNECT_MS).unref();
  void runtime.close().finally(exit);
});
