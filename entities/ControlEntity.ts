import { BaseEntity, Column, Entity, PrimaryColumn } from "typeorm";

/** What a control row applies to: every task of a queue, or every task of a type. */
export type ControlScope = "queue" | "type";

/**
 * Flow controls set at run time, one row per queue or task type: paused, and a concurrency limit
 * across every worker. Written by `pauseQueue`, `setQueueLimits` and the like (and `ormq queue`);
 * every worker reads the table about once a second, so a change takes effect within a second.
 */
@Entity("ormq_controls")
export class ControlEntity extends BaseEntity {
  @PrimaryColumn({ type: "varchar", length: 16 })
  scope!: ControlScope;

  /** The queue's name, or the type's discriminator key. */
  @PrimaryColumn({ type: "varchar", length: 255 })
  name!: string;

  /** 1 while paused: no worker claims its tasks. */
  @Column({ type: "integer", default: 0 })
  paused!: number;

  /** At most this many of its tasks running (claimed) across all workers; null for no limit. */
  @Column({ type: "integer", nullable: true })
  concurrency!: number | null;

  /** Epoch ms of the last change. */
  @Column({ name: "updated_at", type: "bigint" })
  updatedAt!: string;
}

/**
 * ormq's own settings of a database: `schema_version`, the version of ormq's tables, so that a
 * worker of an older ormq refuses to run against tables (and limits) it does not know.
 */
@Entity("ormq_meta")
export class MetaEntity extends BaseEntity {
  @PrimaryColumn({ type: "varchar", length: 64 })
  key!: string;

  @Column({ type: "varchar", length: 255 })
  value!: string;
}

/** The version of ormq's tables this ormq writes and understands. */
export const SCHEMA_VERSION = 2;
