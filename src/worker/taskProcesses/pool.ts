/**
 * The worker's side of `static executor = "process"`: a pool of child processes, each of which
 * loads the user's bootstrap module once and runs one attempt at a time. In Node a process is the
 * only isolation there is: a task that crashes in native code, runs out of memory or leaks takes
 * its own process down, not the worker and the other tasks it holds.
 *
 * - A process started for a class with `static memoryLimitMb` gets that as its V8 heap limit and
 *   runs only tasks with the same limit. A run past it ends the process: the attempt fails with
 *   TaskMemoryLimitError.
 * - A process that ends while it runs an attempt (a crash, `process.exit()`, a kill from outside)
 *   fails the attempt with TaskProcessExitError naming the exit code or signal.
 * - A timeout, a cancel or the shutdown abort reach run() as its signal's reason; a run that has
 *   not settled TERMINATE_AFTER_ABORT_MS later has its process killed.
 * - Each process leads a process group of its own, and a kill is of the group: what a task started
 *   (an ffmpeg, a shell) dies with its process, at a timeout, a cancel, a recycle or the worker's
 *   stop. A process that exits has its group killed after it, for what a task left running.
 *   The process dies with its worker too (its watchdog thread watches for it: watchdog.ts).
 * - A process is retired after `maxTasks` attempts, or when it holds more than `recycleMb` resident
 *   after one, so that leaks do not pile up. Processes start when needed, never ahead.
 *
 * Hand-written over child_process.fork rather than on a pool library: workerpool (the well-kept
 * candidate) cannot retire one process after N tasks, and a process that exits between tasks there
 * fails the next task sent to it ("Worker is terminated"); tinypool's crash error does not say
 * the exit code or signal. What this needs of a pool is the small part below.
 */
import { fork, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { BaseTaskEntity } from "../../../entities/BaseTaskEntity";
import type { TaskRow } from "../../dialect";
import { OrmqConfigurationError, TaskMemoryLimitError, TaskProcessExitError, toError, WorkerShutdownError } from "../../errors";
import type { Logger } from "../../logger";
import type { TaskContext } from "../context";
import { fromRecord, relayLine, TERMINATE_AFTER_ABORT_MS, toRecord, type FromChild, type ToChild } from "../remote/messages";

/** A retired process closes its DataSource and exits; past this it is killed. */
const RETIRE_KILL_AFTER_MS = 5_000;
/** What V8 prints when a process runs out of the heap it was given. */
const OUT_OF_HEAP = /heap out of memory|Reached heap limit/;
/** The end of a process's stderr kept to read why it died. */
const STDERR_TAIL_CHARS = 4_096;
/** After a process exits, how long its last stderr (and a reply already sent) may take to arrive. */
const LAST_WORDS_MS = 200;

export interface ProcessPoolOptions {
  size: number;
  bootstrap: string;
  /** Retire a process after this many attempts. */
  maxTasks: number;
  /** Retire a process that holds more than this, resident, after an attempt. */
  recycleMb: number;
  logger: Logger;
}

interface Child {
  proc: ChildProcess;
  limitMb: number | null;
  attempts: number;
  busy: boolean;
  retiring: boolean;
  /** It exited (or never started): `end` says how. */
  end: { code: number | null; signal: string | null; error?: Error } | null;
  /** Called once when it ends; set by the attempt running on it. */
  onEnd: (() => void) | null;
  rssBytes: number;
  stderrTail: string;
  stderrEnded: Promise<void>;
  exited: Promise<void>;
}

interface Waiter {
  limitMb: number | null;
  give: (child: Child) => void;
  fail: (err: Error) => void;
}

export class ProcessPool {
  private readonly entry: string;
  private readonly bootstrap: string;
  private readonly children = new Set<Child>();
  private readonly waiting: Waiter[] = [];
  private closed = false;
  /** Numbers the attempts sent to processes: lines of an attempt that ended are dropped. */
  private runs = 0;

  constructor(private readonly options: ProcessPoolOptions) {
    // Processes run compiled JavaScript: the entry point is the compiled child.js.
    this.entry = join(__dirname, "child.js");
    if (!existsSync(this.entry)) {
      throw new OrmqConfigurationError(`the process executor needs ormq's compiled JavaScript (${this.entry} is missing)`);
    }
    this.bootstrap = resolve(process.cwd(), options.bootstrap);
  }

  /** Runs `task`'s run() in a process; resolves with its value or rejects with its error. */
  async run(task: BaseTaskEntity, row: TaskRow, ctx: TaskContext): Promise<unknown> {
    const cls = task.constructor as typeof BaseTaskEntity;
    const limitMb = cls.memoryLimitMb ?? null;
    const child = await this.acquire(limitMb, ctx.signal);
    try {
      const run = ++this.runs;
      return await this.runOn(child, { kind: "run", run, task: { row, type: String(row.type), module: cls.module!, attempt: ctx.attempt, workerId: ctx.workerId } }, ctx);
    } finally {
      this.release(child);
    }
  }

  /** Retires every process and waits for them to exit. No process starts after this. */
  async close(): Promise<void> {
    this.closed = true;
    for (const waiter of this.waiting.splice(0)) waiter.fail(new WorkerShutdownError());
    const exits = [...this.children].map((child) => {
      this.retire(child);
      return child.exited;
    });
    await Promise.all(exits);
  }

  /** A free process with the heap limit asked for: an idle one, or a new one when there is room. */
  private acquire(limitMb: number | null, signal: AbortSignal): Promise<Child> {
    if (signal.aborted) return Promise.reject(toError(signal.reason));
    if (this.closed) return Promise.reject(new WorkerShutdownError());
    return new Promise<Child>((resolvePromise, reject) => {
      const leave = () => {
        const at = this.waiting.indexOf(waiter);
        if (at >= 0) this.waiting.splice(at, 1);
        signal.removeEventListener("abort", onAbort);
      };
      const onAbort = () => {
        leave();
        reject(toError(signal.reason));
      };
      const waiter: Waiter = {
        limitMb,
        give: (child) => {
          leave();
          resolvePromise(child);
        },
        fail: (err) => {
          leave();
          reject(err);
        },
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(waiter);
      this.dispatch();
    });
  }

  /**
   * Hands out processes to the attempts waiting, in order, starting processes where there is room.
   * Never throws: a process that cannot be started fails the attempt that asked for it.
   */
  private dispatch(): void {
    if (this.closed) return;
    for (let i = 0; i < this.waiting.length; ) {
      const waiter = this.waiting[i];
      let child = [...this.children].find((c) => usable(c) && c.limitMb === waiter.limitMb);
      if (!child) {
        const live = [...this.children].filter((c) => !c.retiring && c.end === null);
        if (live.length >= this.options.size) {
          // Full: an idle process with another heap limit makes way; otherwise the attempt waits.
          const other = live.find(usable);
          if (!other) {
            i++;
            continue;
          }
          this.retire(other);
        }
        try {
          child = this.spawn(waiter.limitMb);
        } catch (err) {
          waiter.fail(new TaskProcessExitError(null, null, { cause: err })); // it leaves the queue
          continue;
        }
      }
      child.busy = true;
      waiter.give(child); // it leaves the queue
    }
  }

  private release(child: Child): void {
    child.busy = false;
    child.attempts++;
    if (child.end === null && !child.retiring) {
      if (child.attempts >= this.options.maxTasks) this.retire(child);
      else if (child.rssBytes > this.options.recycleMb * 1024 * 1024) {
        this.options.logger.info({ pid: child.proc.pid, rssMb: Math.round(child.rssBytes / 1024 / 1024), recycleMb: this.options.recycleMb }, "task process recycled past its memory mark");
        this.retire(child);
      }
    }
    this.dispatch();
  }

  /** Starts a process; throws when the system refuses one (no file descriptors, no memory). */
  private spawn(limitMb: number | null): Child {
    const proc = fork(this.entry, [this.bootstrap], {
      // Only the heap limit: the worker's own flags (an inspector port, a loader) are not the task's.
      execArgv: limitMb === null ? [] : [`--max-old-space-size=${limitMb}`],
      // The leader of a process group (and session) of its own, so that one kill reaches what its
      // tasks started (see killGroup). It no longer gets a terminal's Ctrl-C: the worker does, and
      // stops it. The IPC channel stays; that it still dies with the worker is child.ts's work.
      detached: true,
      // The structured clone, as for threads: Dates, Buffers and bigints in rows and results survive.
      serialization: "advanced",
      stdio: ["ignore", "inherit", "pipe", "ipc"],
    });
    let exitedResolve!: () => void;
    const child: Child = {
      proc,
      limitMb,
      attempts: 0,
      busy: false,
      retiring: false,
      end: null,
      onEnd: null,
      rssBytes: 0,
      stderrTail: "",
      stderrEnded: Promise.resolve(),
      exited: new Promise<void>((done) => (exitedResolve = done)),
    };
    const ended = (end: NonNullable<Child["end"]>) => {
      if (child.end !== null) return;
      // What its tasks started and left running (it was retired, crashed or was killed from outside)
      // goes with it: before `exited` resolves, so that a closed pool left nothing behind.
      killGroup(proc);
      child.end = end;
      this.children.delete(child);
      exitedResolve();
      if (child.onEnd) child.onEnd();
      else if (!child.retiring && !this.closed) this.options.logger.warn({ pid: proc.pid, exitCode: end.code, signal: end.signal }, "a task process ended between attempts; another starts when needed");
      this.dispatch();
    };
    // First: a fork the system refused reports it here (and never exits).
    proc.on("error", (err) => {
      this.options.logger.warn({ err, pid: proc.pid }, "task process error");
      if (proc.pid === undefined) ended({ code: null, signal: null, error: err });
    });
    proc.once("exit", (code, signal) => ended({ code, signal }));
    // A process whose channel closed cannot take an attempt (it is exiting, or its task code
    // closed it): no more are handed to it.
    proc.once("disconnect", () => this.retire(child));
    if (proc.stderr) {
      // Its stderr goes where the worker's does (with backpressure), and its end is kept to tell a
      // heap limit from a crash.
      child.stderrEnded = new Promise<void>((done) => proc.stderr!.once("close", done));
      proc.stderr.pipe(process.stderr, { end: false });
      proc.stderr.on("data", (chunk: Buffer) => {
        child.stderrTail = (child.stderrTail + chunk.toString("utf8")).slice(-STDERR_TAIL_CHARS);
      });
    }
    this.children.add(child);
    return child;
  }

  /** Closes a process's channel: it closes its DataSource and exits, or is killed after a while. */
  private retire(child: Child): void {
    if (child.retiring || child.end !== null) return;
    child.retiring = true;
    const timer = setTimeout(() => killGroup(child.proc), RETIRE_KILL_AFTER_MS);
    timer.unref();
    void child.exited.then(() => clearTimeout(timer));
    if (child.busy) return; // its attempt's end retires it (see runOn)
    if (child.proc.connected) child.proc.disconnect();
    else killGroup(child.proc);
  }

  /** Runs one attempt on `child`, to its reply, or to the process's end. */
  private runOn(child: Child, message: Extract<ToChild, { kind: "run" }>, ctx: TaskContext): Promise<unknown> {
    const { proc } = child;
    child.stderrTail = ""; // what an earlier attempt printed says nothing of this one
    return new Promise<unknown>((resolvePromise, reject) => {
      let killTimer: NodeJS.Timeout | undefined;
      let killedForAbort = false;
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(killTimer);
        ctx.signal.removeEventListener("abort", onAbort);
        proc.off("message", onMessage);
        child.onEnd = null;
        // A process retired while it ran (its channel closed) leaves now.
        if (child.retiring && child.end === null) {
          if (proc.connected) proc.disconnect();
          else killGroup(proc);
        }
        fn();
      };
      const onAbort = () => {
        post(proc, { kind: "abort", run: message.run, reason: toRecord(ctx.signal.reason) });
        killTimer = setTimeout(() => {
          killedForAbort = true;
          killGroup(proc);
        }, TERMINATE_AFTER_ABORT_MS);
      };
      const onMessage = (received: FromChild) => {
        if (received.run !== message.run) return; // a line of an attempt that already ended
        if (received.kind === "line") return relayLine(ctx, received.line);
        child.rssBytes = received.memory.rssBytes;
        const { reply } = received;
        settle(() => (reply.ok ? resolvePromise(reply.value) : reject(fromRecord(reply.error))));
      };
      child.onEnd = () => {
        const end = child.end!;
        // Its last words (V8's out-of-heap message, a reply already sent) may still be on their way.
        void Promise.race([child.stderrEnded, new Promise((r) => setTimeout(r, LAST_WORDS_MS))]).then(() =>
          settle(() => {
            if (killedForAbort) reject(toError(ctx.signal.reason));
            else if (child.limitMb !== null && OUT_OF_HEAP.test(child.stderrTail)) reject(new TaskMemoryLimitError(child.limitMb));
            else reject(new TaskProcessExitError(end.code, end.signal, end.error ? { cause: end.error } : undefined));
          }),
        );
      };
      proc.on("message", onMessage);
      if (child.end !== null || !proc.connected) {
        // It ended (or is ending) between attempts, after it was handed out.
        if (child.end !== null) child.onEnd();
        return;
      }
      try {
        proc.send(message);
      } catch (err) {
        // A row the structured clone cannot carry: the attempt fails with why; the process is fine.
        settle(() => reject(toError(err)));
        return;
      }
      // After the run message, so that the process knows the run an abort is for.
      if (ctx.signal.aborted) onAbort();
      else ctx.signal.addEventListener("abort", onAbort, { once: true });
    });
  }
}

function usable(child: Child): boolean {
  return !child.busy && !child.retiring && child.end === null && child.proc.connected;
}

/**
 * SIGKILLs a task process's group: the process (if it has not exited) and whatever it started that
 * did not leave the group. The group outlives its leader while one of them is alive, and its number
 * is not handed to another process meanwhile.
 */
function killGroup(proc: ChildProcess): void {
  if (proc.pid === undefined) return; // never started
  try {
    process.kill(-proc.pid, "SIGKILL");
  } catch {
    // No such group: all gone. Or no process groups on this system: the process itself (a no-op once it exited).
    proc.kill("SIGKILL");
  }
}

/** Sends to a process whose channel may have closed (it died): its end says what happened. */
function post(proc: ChildProcess, message: ToChild): void {
  try {
    if (proc.connected) proc.send(message);
  } catch {
    // its end reports it
  }
}
