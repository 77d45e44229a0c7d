/**
 * `OrmqModule`: ormq in a NestJS application, on the DataSource @nestjs/typeorm already opened.
 *
 *   TypeOrmModule.forRoot({ ...ormqDataSourceOptions(url), entities: [...ormqEntities, Order] }),
 *   OrmqModule.forRoot({ worker: { concurrency: 20 } }),
 *   OrmqModule.forFeature([SendConfirmation]),
 *
 * forRoot is global: every module can inject ORMQ_DATA_SOURCE and ORMQ_CLIENT (its events and
 * middleware). forFeature registers task classes as @nestjs/typeorm does entities (found by
 * `autoLoadEntities`, injectable as repositories). See docs/nestjs.md.
 */
import { Module, type DynamicModule, type FactoryProvider, type ModuleMetadata, type Provider } from "@nestjs/common";
import { DataSource, InstanceChecker } from "typeorm";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { ormqFor } from "../client/client";
import { TaskSubscriber } from "../enqueue/subscriber";
import { OrmqConfigurationError, TaskDefinitionError } from "../errors";
import type { TaskClass } from "../registry";
import { OrmqWorkerHost } from "./workerHost";
import { ORMQ_DATA_SOURCE, ORMQ_OPTIONS, type OrmqModuleOptions } from "./tokens";

/** The DataSource's client (`ormqFor(dataSource)`): `@Inject(ORMQ_CLIENT) client: OrmqClient`. */
export const ORMQ_CLIENT = Symbol.for("ormq.nestjs.client");

/** Options of `OrmqModule.forRootAsync`: the module's options made by a factory with injected providers. */
export interface OrmqModuleAsyncOptions extends Pick<ModuleMetadata, "imports"> {
  useFactory: (...args: never[]) => Omit<OrmqModuleOptions, "dataSource"> | Promise<Omit<OrmqModuleOptions, "dataSource">>;
  inject?: FactoryProvider["inject"];
  /** The DataSource (see OrmqModuleOptions.dataSource), given here: it must be known before the factory runs. */
  dataSource?: DataSource | string;
}

/** Holds the repositories of the task classes a forFeature registers. */
@Module({})
export class OrmqFeatureModule {}

@Module({})
export class OrmqModule {
  /** ormq on the application's DataSource, with a worker started and stopped with the application. */
  static forRoot(options: OrmqModuleOptions = {}): DynamicModule {
    checkModuleOptions(options);
    return OrmqModule.root([], { provide: ORMQ_OPTIONS, useValue: options }, options.dataSource);
  }

  /** forRoot with options made by `useFactory` (a ConfigService's values, say). */
  static forRootAsync(options: OrmqModuleAsyncOptions): DynamicModule {
    if (!options || typeof options.useFactory !== "function") throw new OrmqConfigurationError("OrmqModule.forRootAsync: give { useFactory, inject? }");
    const factory = options.useFactory as (...args: unknown[]) => OrmqModuleOptions | Promise<OrmqModuleOptions>;
    const provider: Provider = {
      provide: ORMQ_OPTIONS,
      useFactory: async (...args: unknown[]) => checkModuleOptions({ ...(await factory(...args)), dataSource: options.dataSource }),
      inject: options.inject ?? [],
    };
    return OrmqModule.root(options.imports ?? [], provider, options.dataSource);
  }

  /**
   * Registers task classes with @nestjs/typeorm (`autoLoadEntities` finds them; `@InjectRepository(MyTask)`
   * works). `dataSource`: the @nestjs/typeorm connection's name, when not the default one.
   */
  static forFeature(tasks: readonly TaskClass[], dataSource?: string): DynamicModule {
    if (!Array.isArray(tasks)) throw new TaskDefinitionError("OrmqModule.forFeature: give an array of task classes");
    for (const task of tasks) {
      if (typeof task !== "function" || !(task.prototype instanceof BaseTaskEntity)) {
        throw new TaskDefinitionError(`OrmqModule.forFeature: ${typeof task === "function" ? task.name : String(task)} is not a task class (a @ChildEntity extending BaseTaskEntity)`);
      }
    }
    const repositories = nestTypeorm().TypeOrmModule.forFeature([...tasks], dataSource);
    return { module: OrmqFeatureModule, imports: [repositories], exports: [repositories] };
  }

  private static root(imports: NonNullable<ModuleMetadata["imports"]>, options: Provider, dataSource: DataSource | string | undefined): DynamicModule {
    const given = dataSource !== undefined && typeof dataSource !== "string" ? dataSource : undefined;
    const dataSourceProvider: Provider = given
      ? { provide: ORMQ_DATA_SOURCE, useFactory: () => readied(given) }
      : { provide: ORMQ_DATA_SOURCE, useFactory: (ds: DataSource) => readied(ds), inject: [nestTypeorm().getDataSourceToken(dataSource)] };
    return {
      global: true,
      module: OrmqModule,
      imports,
      providers: [options, dataSourceProvider, { provide: ORMQ_CLIENT, useFactory: (ds: DataSource) => ormqFor(ds), inject: [ORMQ_DATA_SOURCE] }, OrmqWorkerHost],
      exports: [ORMQ_DATA_SOURCE, ORMQ_CLIENT, OrmqWorkerHost],
    };
  }
}

function checkModuleOptions(options: OrmqModuleOptions): OrmqModuleOptions {
  if (!options || typeof options !== "object") throw new OrmqConfigurationError("OrmqModule: options must be an object");
  const { dataSource, worker } = options;
  if (dataSource !== undefined && typeof dataSource !== "string" && !InstanceChecker.isDataSource(dataSource)) {
    throw new OrmqConfigurationError("OrmqModule: `dataSource` must be a DataSource or the name of a @nestjs/typeorm connection");
  }
  if (worker !== undefined && typeof worker !== "boolean" && (worker === null || typeof worker !== "object")) {
    throw new OrmqConfigurationError("OrmqModule: `worker` must be true, false or worker options");
  }
  return options;
}

/**
 * The DataSource, checked for ormq: initialized, with ormq's entities. ormq's subscriber is added
 * when it was not given (with autoLoadEntities, a user's TypeOrmModule options often list entities
 * only): it applies task defaults and wakes workers, and without it a save() would write a task
 * no worker is told of.
 */
function readied(dataSource: DataSource): DataSource {
  if (!dataSource.isInitialized) throw new OrmqConfigurationError("OrmqModule: the DataSource is not initialized (give @nestjs/typeorm's, or initialize yours before the module is built)");
  if (!dataSource.hasMetadata(BaseTaskEntity)) {
    throw new OrmqConfigurationError("OrmqModule: the DataSource has no ormq entities: give TypeOrmModule.forRoot({ ...ormqDataSourceOptions(url), ... }) or list ...ormqEntities in its entities");
  }
  if (!dataSource.subscribers.some((s) => s instanceof TaskSubscriber)) {
    dataSource.subscribers.push(new TaskSubscriber());
    // Added after initialize(), the subscriber was not there when TypeORM made SQLite's one query
    // runner, so that runner was not guarded then; the connection is idle now (no request yet), and
    // later every save() runs inside a transaction, where the guard cannot be installed.
    ormqFor(dataSource).prepare();
  }
  return dataSource;
}

/** @nestjs/typeorm, loaded when a connection is named or defaulted (an optional peer dependency). */
function nestTypeorm(): typeof import("@nestjs/typeorm") {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require("@nestjs/typeorm") as typeof import("@nestjs/typeorm");
  } catch (err) {
    throw new OrmqConfigurationError("ormq/nestjs: @nestjs/typeorm is not installed (npm install @nestjs/typeorm), or give OrmqModule a DataSource of your own", { cause: err });
  }
}
