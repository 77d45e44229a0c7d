/**
 * Leak checks: a test file must not leave a worker running, a DataSource open or a child process
 * alive. `useTestDatabase` runs `assertNoLeaks` after it closes its own database, so every suite
 * that uses it is checked; the registries below are filled by the helpers that open such things.
 */
import type { ChildProcess } from "node:child_process";
import type { DataSource } from "typeorm";
import { liveWorkers } from "../../src/worker/worker";

const dataSources = new Set<DataSource>();
const children = new Set<ChildProcess>();

/** Called by openDataSource: the DataSource must be destroyed by the end of the file. */
export function trackDataSource(ds: DataSource): DataSource {
  dataSources.add(ds);
  return ds;
}

/** Called by the process helpers: the child must have exited by the end of the file. */
export function trackChild(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

/** Fails with what was left behind: workers still running, DataSources still open, children alive. */
export function assertNoLeaks(): void {
  const open = [...dataSources].filter((ds) => ds.isInitialized);
  const alive = [...children].filter((c) => c.exitCode === null && c.signalCode === null);
  const left = [
    liveWorkers() > 0 ? `${liveWorkers()} worker(s) still running` : "",
    open.length > 0 ? `${open.length} DataSource(s) not destroyed` : "",
    alive.length > 0 ? `${alive.length} child process(es) still alive (pids ${alive.map((c) => c.pid).join(", ")})` : "",
  ].filter(Boolean);
  for (const ds of open) dataSources.delete(ds); // reported once
  for (const c of alive) c.kill("SIGKILL"); // and not left to the next file
  if (left.length > 0) throw new Error(`this test file left behind: ${left.join("; ")}`);
}
