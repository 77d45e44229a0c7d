/**
 * `ormq schedules [list]`, `ormq schedules pause|resume|delete NAME`: the schedules (class and
 * run-time) with their next run, through the admin API.
 */
import { deleteSchedule, listSchedules, pauseSchedule, resumeSchedule, type ScheduleInfo } from "../../admin/schedules";
import { InvalidOptionError } from "../../errors";
import { CliError } from "../errors";
import { connect, type ConnectionFlags } from "../connect";
import { printJson, printRecord, printTable } from "../output";

const ACTIONS = ["list", "pause", "resume", "delete"];

/** `ormq schedules [action] [name]`. */
export async function schedulesCommand(action: string | undefined, name: string | undefined, flags: ConnectionFlags & { json?: boolean }): Promise<void> {
  const act = action ?? "list";
  if (!ACTIONS.includes(act)) throw new InvalidOptionError(`ormq schedules: unknown action ${JSON.stringify(act)} (${ACTIONS.join(", ")})`);
  if (act !== "list" && name === undefined) throw new InvalidOptionError(`ormq schedules ${act} needs a schedule name`);
  const conn = await connect(flags, { command: "schedules" });
  try {
    const options = { dataSource: conn.dataSource };
    if (act !== "list") {
      const change = { pause: pauseSchedule, resume: resumeSchedule, delete: deleteSchedule }[act as "pause" | "resume" | "delete"];
      if (!(await change(name!, options))) throw new CliError(`no schedule named ${JSON.stringify(name)}`);
    }
    const schedules = await listSchedules(options);
    if (flags.json) return printJson(act === "list" ? schedules : { [act]: name, schedules });
    if (act !== "list") printRecord({ [act === "delete" ? "deleted" : `${act}d`]: name! });
    printSchedules(schedules);
  } finally {
    await conn.close();
  }
}

function printSchedules(schedules: readonly ScheduleInfo[]): void {
  if (schedules.length === 0) return void process.stdout.write("no schedules\n");
  printTable(
    schedules.map((s) => ({
      name: s.name,
      type: s.type,
      cron: s.cron,
      timezone: s.timezone ?? "UTC",
      source: s.source,
      state: s.paused ? "paused" : "active",
      nextRun: s.paused ? null : s.nextRun,
      lastTick: s.lastTick,
    })),
    { name: "name", type: "type", cron: "cron", timezone: "zone", source: "from", state: "state", nextRun: "next run", lastTick: "last tick" },
  );
}
