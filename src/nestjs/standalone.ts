/**
 * `ormq process -d dist/app.module.js`: a worker process built from the application's own Nest
 * module. The module is started as an application context (no HTTP server), its OrmqModule's
 * in-app worker stays off (this command's worker runs the tasks, with its flags), and tasks
 * resolve their services from that context.
 */
import type { DataSource } from "typeorm";
import { OrmqConfigurationError, toError } from "../errors";
import { nestResolver } from "./resolver";
import { disableInAppWorkers, ORMQ_DATA_SOURCE } from "./tokens";

/** A Nest application context opened for a worker. */
export interface NestWorkerContext {
  dataSource: DataSource;
  resolver: (token: unknown) => unknown;
  close(): Promise<void>;
}

/** Builds `module`'s application context and finds ormq's DataSource in it. */
export async function openNestModule(module: unknown, file: string): Promise<NestWorkerContext> {
  disableInAppWorkers();
  let core: typeof import("@nestjs/core");
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    core = require("@nestjs/core") as typeof import("@nestjs/core");
  } catch (err) {
    throw new OrmqConfigurationError(`${file} exports a Nest module, but @nestjs/core is not installed`, { cause: err });
  }
  const app = await core.NestFactory.createApplicationContext(module as never, { logger: ["error", "warn"], abortOnError: false });
  let dataSource: DataSource;
  try {
    dataSource = app.get<DataSource>(ORMQ_DATA_SOURCE, { strict: false });
  } catch (err) {
    await app.close();
    throw new OrmqConfigurationError(`${file}: its Nest module does not import OrmqModule.forRoot (from ormq/nestjs): ${toError(err).message}`, { cause: err });
  }
  return { dataSource, resolver: nestResolver(app), close: () => app.close() };
}
