/**
 * A task process: what the process pool forks for `static executor = "process"` tasks. It runs
 * one attempt at a time through its RemoteRuntime (which loads the bootstrap module, the first
 * argument, once). The abort reason comes in as a message; log lines, progress and the reply go
 * back, the reply with what the process holds, so the worker can recycle it past its mark. When
 * the worker closes the channel (to retire it, or because the worker died), it closes its
 * DataSource and exits.
 */
import "reflect-metadata";
import { RemoteRuntime } from "../remote/runtime";
import { fromRecord, toRecord, type FromChild, type RemoteReply, type ToChild } from "../remote/messages";

const runtime = new RemoteRuntime(process.argv[2]);
let current: AbortController | undefined;

function send(message: FromChild): void {
  process.send?.(message);
}

function reply(value: RemoteReply): void {
  const { rss, heapUsed } = process.memoryUsage();
  const memory = { rssBytes: rss, heapUsedBytes: heapUsed };
  try {
    send({ kind: "reply", reply: value, memory });
  } catch (err) {
    // A value the structured clone cannot carry (a function, a symbol): the attempt fails with why.
    const error = new TypeError(`run() returned a value that cannot be sent back to the worker: ${(err as Error).message}`);
    send({ kind: "reply", reply: { ok: false, error: toRecord(error) }, memory });
  }
}

process.on("message", (message: ToChild) => {
  if (message.kind === "abort") {
    current?.abort(fromRecord(message.reason));
    return;
  }
  const controller = new AbortController();
  current = controller;
  void runtime
    .run(message.task, controller.signal, (line) => send({ kind: "line", line }))
    .then((value) => {
      current = undefined;
      reply(value);
    });
});

process.on("disconnect", () => {
  void runtime.close().finally(() => process.exit(0));
});
