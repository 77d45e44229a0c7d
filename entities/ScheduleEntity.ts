import { BaseEntity, Column, Entity, PrimaryColumn } from "typeorm";

/** Where a schedule comes from: a task class's `static schedule`, or `createSchedule` at run time. */
export type ScheduleSource = "class" | "api";

/**
 * A recurring task: a cron expression, and the row of the task each tick enqueues. One row per
 * schedule records its last enqueued tick (`last_tick`); a scheduler enqueues a tick's task and
 * advances that row in one transaction, guarded by the tick it read, so each tick becomes exactly
 * one task however many workers run a scheduler, even after that task is finished or pruned.
 */
@Entity("ormq_schedules")
export class ScheduleEntity extends BaseEntity {
  /** The class's discriminator key for a class schedule; any name for a run-time one. */
  @PrimaryColumn({ type: "varchar", length: 255 })
  name!: string;

  /** The discriminator key of the task class each tick enqueues. */
  @Column({ type: "varchar", length: 255 })
  type!: string;

  /** 5 fields, or 6 with seconds first. */
  @Column({ type: "varchar", length: 255 })
  cron!: string;

  /** An IANA time zone, or null for UTC. */
  @Column({ type: "varchar", length: 64, nullable: true })
  timezone!: string | null;

  /** After downtime: "skip", "one" or "all". */
  @Column({ name: "catch_up", type: "varchar", length: 16 })
  catchUp!: string;

  /** The task each tick writes, as JSON: its columns and their values (see schedule/taskTemplate.ts). */
  @Column({ type: "text" })
  task!: string;

  @Column({ type: "varchar", length: 16 })
  source!: ScheduleSource;

  /** 1 while paused: no tick is enqueued, and the ticks missed meanwhile follow `catch_up`. */
  @Column({ type: "integer", default: 0 })
  paused!: number;

  /** Raised by every change of the definition: a scheduler's advance is guarded by the one it read. */
  @Column({ type: "integer", default: 0 })
  revision!: number;

  /** The last tick enqueued (or skipped), epoch ms; null before the first. */
  @Column({ name: "last_tick", type: "bigint", nullable: true })
  lastTick!: string | null;

  /** Epoch ms, by the database's clock: the first tick is the first after it. */
  @Column({ name: "created_at", type: "bigint" })
  createdAt!: string;

  @Column({ name: "updated_at", type: "bigint" })
  updatedAt!: string;
}
