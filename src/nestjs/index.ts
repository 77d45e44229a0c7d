/**
 * `ormq/nestjs`: ormq in a NestJS application (see docs/nestjs.md). `@nestjs/common`,
 * `@nestjs/core` and `@nestjs/typeorm` are optional peer dependencies, loaded only from here.
 */
export { OrmqModule, OrmqFeatureModule, ORMQ_CLIENT, type OrmqModuleAsyncOptions } from "./module";
export { OrmqWorkerHost } from "./workerHost";
export { OrmqDashboardController, type NestDashboardOptions } from "./dashboard";
export { ORMQ_DATA_SOURCE, ORMQ_OPTIONS, type OrmqModuleOptions, type NestWorkerOptions } from "./tokens";
