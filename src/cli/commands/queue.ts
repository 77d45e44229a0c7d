/**
 * `ormq queue pause|resume NAME`, `ormq queue set NAME --concurrency N --rate MAX/WINDOW`, `ormq queue list`, and
 * `ormq type pause|resume KEY`: the flow controls, through the admin API.
 */
import { listControls, pauseQueue, pauseType, resumeQueue, resumeType, setQueueLimits, type QueueLimits } from "../../admin/queues";
import { InvalidOptionError } from "../../errors";
import { MAX_LIMIT, MAX_RATE_WINDOW_MS } from "../../flow/limitSpec";
import { parseDuration, parseInteger } from "../../parse";
import { checkQueue } from "../../validation";
import { connect, type ConnectionFlags } from "../connect";
import { printJson, printRecord, printTable } from "../output";

type Flags = ConnectionFlags & { json?: boolean; concurrency?: string; rate?: string };

/** `ormq queue <action> [name]`. */
export async function queueCommand(action: string, name: string | undefined, flags: Flags): Promise<void> {
  const actions = ["pause", "resume", "set", "list"];
  if (!actions.includes(action)) throw new InvalidOptionError(`ormq queue: unknown action ${JSON.stringify(action)} (${actions.join(", ")})`);
  if (action !== "list" && name === undefined) throw new InvalidOptionError(`ormq queue ${action} needs a queue name`);
  if (name !== undefined) checkQueue(name, "the queue name");
  // Every flag is checked before the database is opened.
  const limits: QueueLimits = {};
  if (action === "set") {
    if (flags.concurrency === undefined && flags.rate === undefined) {
      throw new InvalidOptionError("ormq queue set needs --concurrency N or --rate MAX/WINDOW (none removes either)");
    }
    if (flags.concurrency !== undefined) limits.concurrency = flags.concurrency.trim() === "none" ? null : parseInteger(flags.concurrency, "--concurrency", 1, MAX_LIMIT);
    if (flags.rate !== undefined) limits.rate = parseRate(flags.rate);
  }
  const conn = await connect(flags, { command: "queue" });
  try {
    const options = { dataSource: conn.dataSource };
    if (action === "pause") await pauseQueue(name!, options);
    if (action === "resume") await resumeQueue(name!, options);
    if (action === "set") await setQueueLimits(name!, limits, options);
    const controls = await listControls(options);
    if (flags.json) return printJson(action === "list" ? controls : { [action]: name, controls });
    if (action !== "list") printRecord({ [action === "set" ? "limited" : `${action}d`]: name! });
    printControls(controls);
  } finally {
    await conn.close();
  }
}

/** `ormq type <pause|resume> <key>`. */
export async function typeCommand(action: string, key: string, flags: Flags): Promise<void> {
  if (action !== "pause" && action !== "resume") throw new InvalidOptionError(`ormq type: unknown action ${JSON.stringify(action)} (pause, resume)`);
  const conn = await connect(flags, { command: "type" });
  try {
    await (action === "pause" ? pauseType : resumeType)(key, { dataSource: conn.dataSource });
    const controls = await listControls({ dataSource: conn.dataSource });
    if (flags.json) return printJson({ [action]: key, controls });
    printRecord({ [`${action}d`]: key });
    printControls(controls);
  } finally {
    await conn.close();
  }
}

/** `--rate 20/1s`: at most 20 claimed per second (the window a duration or ms); `none` removes it. */
function parseRate(raw: string): QueueLimits["rate"] {
  if (raw.trim() === "none") return null;
  const match = /^\s*(\d+)\s*\/\s*(\S+)\s*$/.exec(raw);
  if (!match) throw new InvalidOptionError(`--rate must be MAX/WINDOW such as 20/1s or 100/60000, or none; got ${JSON.stringify(raw)}`);
  return {
    max: parseInteger(match[1], "--rate's MAX", 1, MAX_LIMIT),
    perMs: parseDuration(match[2], "--rate's WINDOW", MAX_RATE_WINDOW_MS),
  };
}

/** The paused and limited queues and types, as a table. */
export function printControls(controls: Awaited<ReturnType<typeof listControls>>): void {
  if (controls.length === 0) return void process.stdout.write("no queue or type is paused or limited\n");
  printTable(
    controls.map((c) => ({
      scope: c.scope,
      name: c.name,
      paused: c.paused ? "paused" : "",
      concurrency: c.concurrency ?? "",
      rate: c.rate ? `${c.rate.max} per ${c.rate.perMs} ms` : "",
    })),
    { scope: "scope", name: "name", paused: "paused", concurrency: "concurrency", rate: "rate" },
  );
}
