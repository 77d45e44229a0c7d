/**
 * The watch of the flow controls: reads them every second (a pause or a limit set anywhere applies
 * here within a second) and hands back buffered tasks whose queue or type was paused.
 */
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
