import { BaseEntity, Column, Entity, Index, PrimaryColumn } from "typeorm";
import { idText } from "./transformers";

/** Where a dependency stands: `open` until its task finishes, then what became of that task. */
export type DependencyState = "open" | "succeeded" | "failed" | "cancelled" | "deleted";

/**
 * What the dependent waits for: its dependency's success (`dependsOn`; a failure settles the
 * dependent by its class's `onDependencyFailure`), or only its end, whatever it was (a batch's
 * `onComplete`).
 */
export type DependencyKind = "success" | "finish";

/**
 * One edge of a workflow: task `taskId` waits for task `dependsOn` (`Task.create({ dependsOn })`).
 * A table of its own with an index on each end, not a JSON column: the worker finds a finished
 * task's open dependents through `(dependsOn, state)`, and whether a dependent still has an open
 * one through `(taskId, state)` (one lookup, however many dependencies it has: a fan-in of ten
 * thousand).
 * No foreign keys, as for the events: a finished task may be pruned while the edge is kept for
 * what it says, and a missing dependency is settled as a failed one (see src/workflow/).
 */
@Entity("ormq_task_dependencies")
@Index("ormq_task_dependencies_on", ["dependsOn", "state"])
@Index("ormq_task_dependencies_open", ["taskId", "state"])
export class TaskDependencyEntity extends BaseEntity {
  /** The task that waits. */
  @PrimaryColumn({ name: "task_id", type: "bigint", transformer: idText })
  taskId!: string;

  /** The task it waits for. */
  @PrimaryColumn({ name: "depends_on", type: "bigint", transformer: idText })
  dependsOn!: string;

  @Column({ type: "varchar", length: 16, default: "open" })
  state!: DependencyState;

  @Column({ type: "varchar", length: 16, default: "success" })
  kind!: DependencyKind;
}
