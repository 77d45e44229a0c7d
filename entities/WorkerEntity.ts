import { BaseEntity, Column, Entity, Index, PrimaryColumn } from "typeorm";
import { epochMillis } from "./transformers";

/** A worker's life: `running` while it heartbeats, `stopped` after a graceful stop. */
export type WorkerState = "running" | "stopping" | "stopped";

/**
 * One row per worker (each processOne/processN/processForever call), written by the worker
 * itself: registered at start, heartbeat every few seconds, marked stopped on a graceful stop.
 * A worker that died keeps `running` with an old heartbeat; its tasks are rescued when their
 * leases expire.
 */
@Entity("ormq_workers")
@Index("ormq_workers_heartbeat", ["lastHeartbeatAt"])
export class WorkerEntity extends BaseEntity {
  /** host/pid/random: the value stamped in tasks' `lockedBy`. */
  @PrimaryColumn({ type: "varchar", length: 255 })
  id!: string;

  /** The task class it runs (`BaseTaskEntity` for every type). */
  @Column({ type: "varchar", length: 255 })
  name!: string;

  @Column({ type: "varchar", length: 255 })
  host!: string;

  @Column({ type: "integer" })
  pid!: number;

  /** Queues it takes from; null for every queue. */
  @Column({ type: "simple-json", nullable: true })
  queues!: string[] | null;

  @Column({ type: "varchar", length: 16 })
  state!: WorkerState;

  @Column({ name: "started_at", type: "bigint", transformer: epochMillis })
  startedAt!: Date;

  @Column({ name: "last_heartbeat_at", type: "bigint", transformer: epochMillis })
  lastHeartbeatAt!: Date;

  @Column({ name: "stopped_at", type: "bigint", nullable: true, transformer: epochMillis })
  stoppedAt!: Date | null;
}
