/** The `ormq` command line: commands, flags and help. Each command's work is in commands/. */
import { join } from "node:path";
import { Command, Option } from "commander";
import type * as AdminCommands from "./commands/admin";
import type * as InspectCommands from "./commands/inspect";
import type * as WorkerCommand from "./workerCommand/command";
import type * as SubmitCommand from "./commands/submit";
import type * as QueueCommands from "./commands/queue";
import type * as SchedulesCommand from "./commands/schedules";
import type * as DashboardCommand from "./commands/dashboard";
import { helpLine } from "../settings/docs";
import { entries, flagName } from "../settings/table";
import { WORKER_SETTING_TABLE } from "../worker/settings";
import { PROCESS_SETTING_TABLE } from "./workerCommand/flags";

// Each command's module is loaded when that command runs: `ormq --help`, or a flag refused by
// the parser, does not load TypeORM, the drivers and the validators (0.8 s of a start, 0.2 without).
/* eslint-disable @typescript-eslint/no-require-imports */
const admin = () => require("./commands/admin") as typeof AdminCommands;
const inspect = () => require("./commands/inspect") as typeof InspectCommands;
const worker = () => require("./workerCommand/command") as typeof WorkerCommand;
const submit = () => require("./commands/submit") as typeof SubmitCommand;
const queue = () => require("./commands/queue") as typeof QueueCommands;
const schedules = () => require("./commands/schedules") as typeof SchedulesCommand;
const dashboard = () => require("./commands/dashboard") as typeof DashboardCommand;
/* eslint-enable @typescript-eslint/no-require-imports */

/** The database options every command takes. */
function withConnection(command: Command, { json = true } = {}): Command {
  command
    .option("-d, --data-source <path>", "module exporting your DataSource, which imports your task classes [env ORMQ_DATA_SOURCE]")
    .option("--database-url <url>", "postgres:// URL or SQLite file, when no -d is given [env ORMQ_DATABASE_URL]");
  if (json) command.option("--json", "print JSON instead of a table");
  return command;
}

/** The task filter flags (see taskFilterOf). */
function withFilters(command: Command): Command {
  return command
    .option("--type <type>", "only this task type")
    .option("--queue <name>", "only this queue")
    .option("--where <condition>", "a column of the --type class: PROPERTY=VALUE, PROPERTY>=VALUE or PROPERTY<=VALUE (repeatable)", (v: string, all: string[] = []) => [...all, v])
    .option("--created-from <date>", "created at or after this ISO date or time")
    .option("--created-before <date>", "created before this ISO date or time");
}

/** ormq's version, from its package.json (two levels up from the source, three from dist/). */
function packageVersion(): string {
  for (const relative of ["../../package.json", "../../../package.json"]) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const pkg = require(join(__dirname, relative)) as { name?: string; version?: string };
      if (pkg.name === "ormq" && pkg.version) return pkg.version;
    } catch {
      // not at this level
    }
  }
  return "unknown";
}

function examples(...lines: string[]): string {
  return "\nExamples:\n" + lines.map((l) => `  $ ${l}`).join("\n") + "\n";
}

/**
 * Builds the program. `exit` receives the exit code of a command that completes with one
 * (`process`); the others exit 0, or 1 through the error handler in main.
 */
export function buildProgram(exit: (code: number) => void): Command {
  const program = new Command("ormq")
    .description("ormq: a task queue in which every kind of task is a TypeORM entity")
    .showHelpAfterError("(add --help for usage)")
    .configureOutput({ outputError: (str, write) => write(str) });
  program.version(packageVersion(), "-v, --version");
  program.addHelpText(
    "after",
    "\nA failure prints one line on stderr (`ormq: <problem>`) and exits 1; set ORMQ_DEBUG=1 to print the full error and its stack as well.\n",
  );

  const processCmd = withConnection(
    program
      .command("process")
      .description("run a worker: claim and run tasks until stopped (SIGINT/SIGTERM) or, with --until-empty, until none is ready")
      .argument("[types...]", "task types (discriminator keys) to run, as --types; default every type [env ORMQ_TYPES]"),
  ).option("--until-empty", "stop when no task is ready and none is running (a progress bar in a terminal)");
  // Every setting's flag, from the tables: its name, value, default and variable are derived there.
  for (const [key, spec] of [...entries(WORKER_SETTING_TABLE), ...entries(PROCESS_SETTING_TABLE)]) {
    processCmd.addOption(new Option(`${flagName(key)} ${spec.parser.placeholder}`, helpLine(key, spec)));
  }
  processCmd
    .addHelpText(
      "after",
      examples(
        "ormq process -d dist/data-source.js",
        "ormq process send_email resize_image -d dist/data-source.js --queues emails,images --concurrency 20",
        "ormq process -d dist/data-source.js --processes 4 --metrics-port 9464",
        "ormq process -d dist/data-source.js --until-empty",
      ) + "\nEvery flag has an environment variable: --lease-ms is ORMQ_LEASE_MS. Flags beat the environment, which beats options in code.\n",
    )
    .action(async (types: string[], flags) => exit(await worker().processCommand(types, flags)));

  withConnection(
    program
      .command("submit")
      .description("enqueue one task; it is validated like any insert")
      .argument("<type>", "the task type (its discriminator key)"),
  )
    .option("--data <json>", "the task's fields, as a JSON object; each is checked against its column's type", "{}")
    .option("--queue <name>", "queue (default: the class's)")
    .option("--delay <ms|duration>", "run no sooner than this from now (30s, 5m, or ms; at most 100 years)")
    .option("--priority <n>", "higher runs first, a 32-bit integer (default: the class's)")
    .option("--max-attempts <n>", "attempts before it gives up, 1 to 2147483647 (default: the class's)")
    .addHelpText("after", examples(`ormq submit send_email -d dist/data-source.js --data '{"to":"a@b.example"}' --delay 10s`))
    .action((type: string, flags) => submit().submitCommand(type, flags));

  withConnection(program.command("stats").description("count tasks by queue, type and status; oldest ready task; live workers"))
    .option("--watch [seconds]", "refresh every few seconds (default 2, at most 86400) until interrupted")
    .addHelpText("after", examples("ormq stats --database-url postgres://localhost/app", "ormq stats -d dist/data-source.js --watch 5", "ormq stats --json"))
    .action((flags) => inspect().statsCommand(flags));

  withConnection(program.command("list").description("list tasks, newest first"))
    .option("--status <status>", "pending, running, succeeded, failed or cancelled")
    .option("--type <type>", "only this task type")
    .option("--queue <name>", "only this queue")
    .option("--limit <n>", "most tasks shown (at most 10000)", "50")
    .option("--before <id>", "the page before this task id (the cursor the previous page printed)")
    .addHelpText("after", examples("ormq list --status failed --type send_email", "ormq list --queue emails --limit 10 --json", "ormq list --status failed --before 1200345"))
    .action((flags) => inspect().listCommand(flags));

  withConnection(program.command("show").description("show one task with its history").argument("<id>", "task id (a positive 64-bit integer)"))
    .addHelpText("after", examples("ormq show 42"))
    .action((id: string, flags) => inspect().showCommand(id, flags));

  withFilters(withConnection(program.command("retry").description("put a failed task (or all failed tasks) back in the queue").argument("[id]", "task id"))
    .option("--failed", "every failed task (narrow with --type, --queue, --where, --created-*)"))
    .addHelpText("after", examples("ormq retry 42", "ormq retry --failed --type send_email", "ormq retry --failed --type sync_account --where accountId=a1"))
    .action((id: string | undefined, flags) => admin().retryCommand(id, flags));

  withFilters(withConnection(program.command("delete").description("delete finished tasks (succeeded, failed, cancelled) that a filter matches, with their history")))
    .option("--status <statuses>", "finished statuses, comma-separated (default all three)")
    .addHelpText("after", examples("ormq delete --status failed --type send_email", "ormq delete --type sync_account --where accountId=a1 --created-before 2026-11-01"))
    .action((flags) => admin().deleteCommand(flags));

  withConnection(program.command("cancel").description("cancel a pending task, or ask a running one's worker to stop it").argument("<id>", "task id"))
    .option("--reason <text>", "recorded as the task's last error")
    .option("--workflow", "cancel the task and everything below it in its workflow (its children and dependents, all the way down)")
    .addHelpText("after", examples("ormq cancel 42 --reason 'customer left'", "ormq cancel 42 --workflow"))
    .action((id: string, flags) => admin().cancelCommand(id, flags));

  withConnection(program.command("prune").description("delete finished tasks and their history"))
    .option("--older-than <duration>", "finished more than this long ago (7d, 12h, or ms; at most 100 years); required")
    .option("--status <statuses>", "finished statuses to delete, comma-separated (default succeeded,cancelled)")
    .addHelpText("after", examples("ormq prune --older-than 7d", "ormq prune --older-than 30d --status succeeded,cancelled,failed"))
    .action((flags) => admin().pruneCommand(flags));

  withConnection(
    program
      .command("queue")
      .description("pause or resume a queue, set its concurrency limit, or list paused and limited queues and types (for every worker within a second)")
      .argument("<action>", "pause, resume, set or list")
      .argument("[name]", "queue name"),
  )
    .option("--concurrency <n>", "with set: at most N of the queue's tasks running across all workers; none removes the limit")
    .option("--rate <max/window>", "with set: at most MAX of the queue's tasks claimed in any WINDOW (20/1s, 100/60000); none removes it")
    .action((action: string, name: string | undefined, flags) => queue().queueCommand(action, name, flags));

  withConnection(
    program
      .command("type")
      .description("pause or resume a task type in every queue (for every worker within a second)")
      .argument("<action>", "pause or resume")
      .argument("<key>", "the type's @ChildEntity key"),
  ).action((action: string, key: string, flags) => queue().typeCommand(action, key, flags));

  withConnection(
    program
      .command("schedules")
      .description("list the schedules with their next run, or pause, resume or delete one")
      .argument("[action]", "list (default), pause, resume or delete")
      .argument("[name]", "the schedule's name (a class schedule's is its type key)"),
  )
    .addHelpText("after", examples("ormq schedules -d dist/data-source.js", "ormq schedules pause nightly_report -d dist/data-source.js"))
    .action((action: string | undefined, name: string | undefined, flags) => schedules().schedulesCommand(action, name, flags));

  withConnection(program.command("dashboard").description("serve the web dashboard until SIGINT/SIGTERM"), { json: false })
    .option("--port <port>", "port (default 8080) [env ORMQ_DASHBOARD_PORT]")
    .option("--host <address>", "address to bind (default 127.0.0.1)")
    .option("--token <token>", "the token a browser signs in with, or sends as a bearer header; at least 16 characters [env ORMQ_DASHBOARD_TOKEN]")
    .option("--no-auth", "no authentication: allowed only on a loopback address")
    .option("--read-only", "hide and refuse every action")
    .addHelpText("after", examples("ORMQ_DASHBOARD_TOKEN=$(openssl rand -hex 16) ormq dashboard -d dist/data-source.js --port 8080", "ormq dashboard --database-url ./app.sqlite --no-auth --read-only"))
    .action((flags) => dashboard().dashboardCommand(flags));

  withConnection(program.command("migrate").description("create or update ormq's tables (runs the DataSource's migrations)"))
    .addHelpText("after", examples("ormq migrate --database-url ./app.sqlite", "ormq migrate -d dist/data-source.js"))
    .action((flags) => admin().migrateCommand(flags));

  return program;
}
