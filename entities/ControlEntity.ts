import { BaseEntity, Column, Entity, Index, PrimaryColumn, PrimaryGeneratedColumn } from "typeorm";

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

  /** At most `rate_max` of its tasks claimed in any `rate_per_ms` window, across all workers; null for none. */
  @Column({ name: "rate_max", type: "integer", nullable: true })
  rateMax!: number | null;

  @Column({ name: "rate_per_ms", type: "bigint", nullable: true })
  ratePerMs!: string | null;

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

/**
 * One claim of a rate-limited task, held until its window ends (`until`, epoch ms by the
 * database's clock): the count of a key's rows still held is its use of the window. Written by the
 * limited claim, deleted by it once past.
 */
@Entity("ormq_rate_claims")
@Index("ormq_rate_claims_key", ["key", "until"])
@Index("ormq_rate_claims_until", ["until"])
export class RateClaimEntity extends BaseEntity {
  @PrimaryGeneratedColumn("increment", { type: "bigint" })
  id!: string;

  /** `t:<type>:<value>` for a class's limit, `q:<queue>` for a queue's. */
  @Column({ type: "varchar", length: 600 })
  key!: string;

  @Column({ type: "bigint" })
  until!: string;
}

/** The version of ormq's tables this ormq writes and understands. */
export const SCHEMA_VERSION = 6;
