/**
 * A task thread: piscina's entry point. It runs one attempt per call through the thread's
 * RemoteRuntime (which loads the bootstrap module once): the abort reason comes in over the
 * attempt's port, log lines and progress go back over it.
 */
import "reflect-metadata";
import { workerData } from "node:worker_threads";
import { RemoteRuntime } from "../remote/runtime";
import { fromRecord, PORT_END, type RemoteReply, type ThreadTask } from "../remote/messages";

const runtime = new RemoteRuntime((workerData as { bootstrap: string }).bootstrap);

export default async function runAttempt(message: ThreadTask): Promise<RemoteReply> {
  const controller = new AbortController();
  message.port.on("message", (reason) => controller.abort(fromRecord(reason)));
  try {
    return await runtime.run(message, controller.signal, (line) => message.port.postMessage(line));
  } finally {
    // The last message: the worker waits for it, so no log line is lost. (Not the port's `close`
    // event: under piscina it did not reach the worker, and each attempt waited PORT_DRAIN_MS.)
    message.port.postMessage(PORT_END);
    message.port.close();
  }
}
