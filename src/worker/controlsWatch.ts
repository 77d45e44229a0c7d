/**
 * The worker's side of flow control: a watch that reads the controls every second (a pause or a
 * limit set anywhere applies here within a second) and hands back buffered tasks whose queue or
 * type was paused, and the claim that goes through the gate (FlowGate).
 */
import type { Dialect, TaskRow } from "../dialect";
import type { Logger } from "../logger";
import { Periodic } from "../maintenance/periodic";
import type { FlowGate } from "./flowGate";
import type { HeldTasks } from "./heldTasks";

/** How often the controls are read: the promise is "within a second". */
export const CONTROLS_INTERVAL_MS = 900;

/** Starts the watch; `onChange` is told when what may be claimed changed (a resume, a raised limit). */
export function startControlsWatch(gate: FlowGate, held: HeldTasks, logger: Logger, onChange: () => void): Periodic {
  return new Periodic(CONTROLS_INTERVAL_MS, async () => {
    try {
      if (!(await gate.refresh())) return;
      logger.info({ paused: gate.paused }, "flow controls changed");
      const blocked = [...held.buffered.values()].filter((row) => gate.blocked(row)).map((row) => String(row.id));
      // Claimed but not started: back to the queue, their attempt not counted. Running ones finish.
      if (blocked.length > 0) await held.handBack(blocked);
      onChange();
    } catch (err) {
      logger.warn({ err }, "could not read the flow controls; keeping the last ones");
    }
  }).start();
}

/**
 * Claims through the gate: tasks under no limit first (up to `want`), then tasks under a limit,
 * never more than the free slots (`room`): a task claimed counts against its limit, so a buffered
 * one would hold a place another worker could use.
 */
export async function claimThrough(dialect: Dialect, gate: FlowGate, want: number, room: number): Promise<{ rows: TaskRow[]; full: boolean }> {
  const { plain, limited } = gate.requests();
  const rows = plain ? await dialect.claim({ ...plain, limit: want }) : [];
  let full = plain !== null && rows.length === want;
  const limitedWant = Math.min(want - rows.length, room - rows.length);
  if (limited && limitedWant > 0) {
    const more = await dialect.claim({ ...limited, limit: limitedWant });
    rows.push(...more);
    full ||= more.length === limitedWant; // every free slot taken: more may be ready
  }
  return { rows, full };
}
