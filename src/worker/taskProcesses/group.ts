/**
 * A task process's view of its worker and of its own process group, for child.ts and its watchdog
 * thread (watchdog.ts). A task process leads a group of its own (the pool forks it detached): what
 * its tasks start joins that group, unless they detach themselves.
 */
import { readdirSync, readFileSync } from "node:fs";

/**
 * Whether the worker (`workerPid`, this process's parent at start-up) has died. Linux: whether
 * this process's parent, read now from /proc, is still the worker (`process.ppid` is read once, at
 * start-up; a process whose parent dies is handed to another, while a pid may linger as a zombie
 * its own parent has not reaped). Elsewhere: whether a process with the worker's pid is there.
 */
export function workerGone(workerPid: number): boolean {
  try {
    return Number(statFields("self")[1]) !== workerPid;
  } catch {
    try {
      process.kill(workerPid, 0);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === "ESRCH";
    }
  }
}

/** Kills this process's group, this process included: with the worker gone, nothing else will. */
export function killOwnGroup(): void {
  try {
    process.kill(-process.pid, "SIGKILL");
  } catch {
    process.kill(process.pid, "SIGKILL"); // no process groups on this system
  }
}

/**
 * Kills the other processes of this process's group (what its tasks started), and leaves this one
 * to exit as it means to. Linux: found in /proc by their process group; elsewhere nothing is done
 * here (the watchdog and the pool cover it).
 */
export function killRestOfGroup(): void {
  let names: string[];
  try {
    names = readdirSync("/proc");
  } catch {
    return;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (Number(statFields(name)[2]) === process.pid) process.kill(Number(name), "SIGKILL");
    } catch {
      // gone meanwhile, or not ours to kill
    }
  }
}

/** /proc/<pid>/stat after the command's name: state, ppid, pgrp, … (the name may hold spaces and parentheses). */
function statFields(pid: string): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}
