import { BaseEntity, Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from "typeorm";
import { BaseTaskEntity } from "./BaseTaskEntity";
import { epochMillis } from "./transformers";

/** What happened to a task. */
export type TaskEventKind =
  | "enqueued"
  | "started"
  | "succeeded"
  | "failed"
  | "retried"
  | "snoozed"
  | "handed_back"
  | "rescued"
  | "cancelled"
  | "requeued";

/**
 * A task's history: one row per transition, written in the same statement or transaction as the
 * transition itself. An attempt's start has no row of its own: the row of its outcome carries it
 * (`startedAt`), and a running attempt's start is its task's `started_at`. One row per attempt
 * instead of two is about a fifth of a PostgreSQL drain's server time (measured: 78-83 µs of
 * server CPU a task with a "started" row, 63-65 without). Readers (`showTask`) list the start as
 * an event. Turn it off per task class with `static history = false` for raw throughput
 * (the task's own `errors` list is kept either way).
 *
 * The relation to the task has no foreign-key constraint in the database. Every row is written by
 * the statement that changes its task, so the reference is right by construction; a constraint
 * would only re-check it, once per event, on the hottest path (measured on PostgreSQL: about 20 µs
 * of server time per task, a quarter of a drain's). `prune` deletes a task's events with it, and
 * the events of tasks the application deleted itself once they are older than its cutoff.
 */
@Entity("ormq_task_events")
export class TaskEventEntity extends BaseEntity {
  @PrimaryGeneratedColumn("increment", { type: "bigint" })
  id!: string;

  @Index("ormq_task_events_task")
  @ManyToOne(() => BaseTaskEntity, { nullable: false, createForeignKeyConstraints: false })
  @JoinColumn({ name: "task_id" })
  task!: BaseTaskEntity;

  @Column({ name: "task_id", type: "bigint" })
  taskId!: string;

  @Column({ type: "varchar", length: 16 })
  kind!: TaskEventKind;

  @Column({ type: "bigint", transformer: epochMillis })
  at!: Date;

  /** The worker that made the transition, when one did. */
  @Column({ type: "varchar", length: 255, nullable: true })
  worker!: string | null;

  @Column({ type: "integer", nullable: true })
  attempt!: number | null;

  /**
   * When the attempt this event ended started (an outcome of a worker's attempt: succeeded, failed,
   * retried, snoozed, handed_back, cancelled, rescued); null for events that end no attempt.
   */
  @Column({ name: "started_at", type: "bigint", nullable: true, transformer: epochMillis })
  startedAt!: Date | null;

  /** The error, for failed, retried and rescued. */
  @Column({ type: "text", nullable: true })
  error!: string | null;
}
