/**
 * A task process's watchdog: a thread that kills the process's group (the process and what its
 * tasks started) once the worker is gone.
 *
 * Why a thread: the channel's 'disconnect' tells the main thread, but only when its event loop
 * turns, and a task in a tight loop never lets it: the process would spin on for ever at full CPU.
 * Node cannot ask the kernel for a signal at its parent's death (prctl PR_SET_PDEATHSIG); a thread
 * has its own event loop, and its process.kill() works while the main thread spins. It is started
 * once per process (a process serves many attempts) and costs a look every WATCHDOG_INTERVAL_MS.
 */
import { workerData } from "node:worker_threads";
import { killOwnGroup, workerGone } from "./group";

/** How often the watchdog looks for the worker. */
const WATCHDOG_INTERVAL_MS = 500;

const workerPid = workerData as number;
setInterval(() => {
  if (workerGone(workerPid)) killOwnGroup();
}, WATCHDOG_INTERVAL_MS);
