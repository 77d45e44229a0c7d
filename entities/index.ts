import { BaseTaskEntity } from "./BaseTaskEntity";

export * from "./BaseTaskEntity";
export { epochMillis } from "./transformers";

/** ormq's entities, to spread into a DataSource's `entities` next to your own. */
export const ormqEntities = [BaseTaskEntity];
