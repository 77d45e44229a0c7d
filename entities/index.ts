import { BaseTaskEntity } from "./BaseTaskEntity";
import { TaskEventEntity } from "./TaskEventEntity";
import { WorkerEntity } from "./WorkerEntity";
import { ControlEntity, MetaEntity, RateClaimEntity } from "./ControlEntity";
import { ScheduleEntity } from "./ScheduleEntity";
import { TaskDependencyEntity } from "./TaskDependencyEntity";

export * from "./BaseTaskEntity";
export * from "./TaskEventEntity";
export * from "./WorkerEntity";
export * from "./ControlEntity";
export * from "./ScheduleEntity";
export * from "./TaskDependencyEntity";
export { epochMillis } from "./transformers";

/** ormq's entities, to spread into a DataSource's `entities` next to your own. */
export const ormqEntities = [BaseTaskEntity, WorkerEntity, TaskEventEntity, ControlEntity, MetaEntity, RateClaimEntity, ScheduleEntity, TaskDependencyEntity];
