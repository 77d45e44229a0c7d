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
 * Claims through the gate: tasks under no limit first (up to `want`), then tasks under a limit
 * with what is left. A task claimed counts against its limits whether it runs or waits in this
 * worker's buffer, so no limit is exceeded by claiming ahead; the buffer (the prefetch gauge's:
 * what the slots get through in two claim round trips) bounds how long a place held here waits.
 * Claiming only for free slots was measured at 4% of the unlimited drain's rate (a claim of a
 * few tasks at a time); batches keep it at about two thirds.
 */
export async function claimThrough(dialect: Dialect, gate: FlowGate, want: number): Promise<{ rows: TaskRow[]; full: boolean }> {
  const { plain, limited } = gate.requests();
  const rows = plain ? await dialect.claim({ ...plain, limit: want }) : [];
  let full = plain !== null && rows.length === want;
  const limitedWant = want - rows.length;
  if (limited && limitedWant > 0) {
    const more = await dialect.claim({ ...limited, limit: limitedWant });
    rows.push(...more);
    full ||= more.length === limitedWant; // every free slot taken: more may be ready
  }
  return { rows, full };
}
