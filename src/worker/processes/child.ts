/**
 * A task process: what the process pool forks for `static executor = "process"` tasks. It runs
 * one attempt at a time through its RemoteRuntime, whose bootstrap module (the first argument) it
 * starts loading at once. The abort reason comes in as a message; log lines, progress and the
 * reply go back, numbered by attempt, the reply with what the process holds, so the worker can
 * recycle it past its mark. When the worker closes the channel (to retire it, or because the
 * worker died), it closes its DataSource and exits.
 *
 * It leads a process group of its own (the pool forks it detached), and it dies with its worker,
 * with its group, whatever its task is doing: see WATCHDOG.
 */
import "reflect-metadata";
import { readdirSync, readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { RemoteRuntime } from "../remote/runtime";
import { fromRecord, toRecord, type FromChild, type RemoteReply, type ToChild } from "../remote/messages";

/** After the channel closes, the longest the DataSource may take to close before the process exits anyway. */
const EXIT_AFTER_DISCONNECT_MS = 3_000;
/** How often the watchdog thread looks for the worker. */
const WATCHDOG_INTERVAL_MS = 500;
/** The worker that forked this process. (`process.ppid` is read once, at start-up.) */
const workerPid = process.ppid;

/**
 * Whether the worker has died. Linux: whether this process's parent, read now from /proc, is still
 * the worker (a process whose parent dies is handed to another at once, while a pid may linger as
 * a zombie its own parent has not reaped). Elsewhere: whether a process with the worker's pid is
 * there. The watchdog thread repeats this in plain JavaScript (a thread started from source text
 * cannot import it).
 */
function workerGone(): boolean {
  try {
    // "pid (comm) state ppid ...": the command's name may hold spaces and parentheses.
    const stat = readFileSync("/proc/self/stat", "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) !== workerPid;
  } catch {
    try {
      process.kill(workerPid, 0);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === "ESRCH";
    }
  }
}

/**
 * The watchdog: a thread that kills this process's group (this process and what its tasks started)
 * once the worker is gone. The channel's 'disconnect' tells the main thread, but only when its
 * event loop turns: a task in a tight loop never sees it, and would spin on for ever at full CPU.
 * Node cannot ask the kernel for a signal at its parent's death (prctl PR_SET_PDEATHSIG); a thread
 * has its own event loop, and its process.kill() works while the main thread spins. It is started
 * once per process (a process serves many attempts), costs a poll every WATCHDOG_INTERVAL_MS, and
 * does not hold the process open.
 */
const WATCHDOG = `
const { workerData: workerPid } = require("node:worker_threads");
const { readFileSync } = require("node:fs");
function workerGone() {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) !== workerPid;
  } catch {
    try {
      process.kill(workerPid, 0);
      return false;
    } catch (err) {
      return err.code === "ESRCH";
    }
  }
}
setInterval(() => {
  if (!workerGone()) return;
  try {
    process.kill(-process.pid, "SIGKILL");
  } catch {
    process.kill(process.pid, "SIGKILL");
  }
}, ${WATCHDOG_INTERVAL_MS});
`;

/** Kills this process's group, this process included: with the worker gone, nothing else will. */
function killOwnGroup(): void {
  try {
    process.kill(-process.pid, "SIGKILL");
  } catch {
    process.kill(process.pid, "SIGKILL"); // no process groups on this system
  }
}

function startWatchdog(): void {
  try {
    const watchdog = new Worker(WATCHDOG, { eval: true, workerData: workerPid });
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

/**
 * Kills the other processes of this process's group (what its tasks started), and leaves this one
 * to exit as it means to. Linux: found in /proc by their process group; elsewhere nothing is done
 * here (the watchdog and the pool cover it).
 */
function killRestOfGroup(): void {
  let names: string[];
  try {
    names = readdirSync("/proc");
  } catch {
    return;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      // "pid (comm) state ppid pgrp ...": the command's name may hold spaces and parentheses.
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]) === process.pid) process.kill(Number(name), "SIGKILL");
    } catch {
      // gone meanwhile, or not ours to kill
    }
  }
}

process.on("disconnect", () => {
  const exit = () => {
    if (workerGone()) killOwnGroup();
    // The channel closes before a dying worker's children are handed to another parent, so
    // workerGone() can still say no here when the worker was killed: what the tasks started goes
    // either way (a retired process's leftovers would be killed by the pool after it exits).
    else killRestOfGroup();
    process.exit(0);
  };
  setTimeout(exit, EXIT_AFTER_DISCONNECT_MS).unref();
  void runtime.close().finally(exit);
});
