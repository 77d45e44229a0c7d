/**
 * Schedule definitions into `ormq_schedules`: a class's `static schedule`, written (or brought up
 * to date) by every worker that starts, and run-time schedules made by `createSchedule`. Both are
 * a cron spec and the task row each tick writes (see taskTemplate.ts).
 */
import type { DataSource } from "typeorm";
import { deleteScheduleRows, insertSchedule, readSchedules, sameDefinition, updateSchedule, type ScheduleDefinition } from "../dialect/scheduleStatements";
import type { Logger } from "../logger";
import type { TaskType } from "../registry";
import type { ScheduleSpec } from "./scheduleSpec";
import { taskTemplate } from "./taskTemplate";
import { ormqFor } from "../client/client";

/** The definition of a schedule of `type`. */
export async function scheduleDefinition(
  dataSource: DataSource,
  name: string,
  type: TaskType,
  spec: ScheduleSpec,
  data: unknown,
  source: ScheduleDefinition["source"],
  where: string,
): Promise<ScheduleDefinition> {
  const template = await taskTemplate(dataSource, type, data, where, await ormqFor(dataSource).clock.now());
  return { name, type: type.key, cron: spec.cron, timezone: spec.timezone, catchUp: spec.catchUp, task: JSON.stringify(template), source };
}

/**
 * Writes `definition` as the schedule of its name: inserted when missing, updated (a new revision)
 * when it differs. Of several writers at once, one inserts and the others find it. Returns false,
 * writing nothing, when a schedule of the other source holds the name.
 */
export async function putSchedule(dataSource: DataSource, definition: ScheduleDefinition): Promise<boolean> {
  const m = dataSource.manager;
  const now = await ormqFor(dataSource).clock.now();
  for (let round = 0; round < 3; round++) {
    let [row] = await readSchedules(m, { name: definition.name });
    if (!row) {
      await insertSchedule(m, definition, now);
      [row] = await readSchedules(m, { name: definition.name });
      if (!row) continue; // deleted in between: write it again
    }
    if (row.source !== definition.source) return false;
    if (sameDefinition(row, definition)) return true;
    if (await updateSchedule(m, definition, row.revision, now)) return true;
    // Changed by another writer in between: read it again.
  }
  return true; // others keep writing it; the last writer's definition stands
}

/**
 * Writes every class schedule of `types` (at worker start), and removes the class schedules of
 * those types that no longer declare one. A class schedule whose name a run-time schedule holds
 * is left out with a warning.
 */
export async function registerClassSchedules(dataSource: DataSource, types: readonly TaskType[], logger: Logger): Promise<void> {
  const unscheduled = types.filter((t) => !t.schedule).map((t) => t.key);
  for (let i = 0; i < unscheduled.length; i += 500) await deleteScheduleRows(dataSource.manager, unscheduled.slice(i, i + 500), "class");
  for (const type of types) {
    if (!type.schedule) continue;
    const definition = await scheduleDefinition(dataSource, type.key, type, type.schedule.spec, type.schedule.data, "class", `${type.cls.name}.schedule`);
    if (!(await putSchedule(dataSource, definition))) {
      logger.warn({ schedule: type.key, type: type.key }, "a run-time schedule has this class's name: the class's own schedule is not written");
    }
  }
}
