/**
 * How a CLI command gets its DataSource: the user's module (`-d`, `ORMQ_DATA_SOURCE`), which
 * imports the task classes, or, for the commands that need no task class, a database URL
 * (`--database-url`, `ORMQ_DATABASE_URL`) opened with ormq's entities only.
 */
import { existsSync } from "node:fs";
import type { DependencyContainer } from "tsyringe";
import { DataSource } from "typeorm";
import { databaseFileOf, ormqDataSourceOptions } from "../config";
import { OrmqConfigurationError } from "../errors";
import { loadAppModule } from "../moduleLoader";

/** The options every command that touches the database takes. */
export interface ConnectionFlags {
  dataSource?: string;
  databaseUrl?: string;
}

export interface Connection {
  dataSource: DataSource;
  container?: DependencyContainer;
  /** Where tasks resolve services when the module is a Nest module (its application context). */
  resolver?: (token: unknown) => unknown;
  /** True when opened from the user's module (task classes known). */
  fromModule: boolean;
  close(): Promise<void>;
}

/**
 * Opens the database for a command. `needsClasses` commands (process, submit) require the module.
 * `mayCreate`: a SQLite file may be created (migrate); other commands refuse a missing file rather
 * than report an empty queue from a database that was never there.
 */
export async function connect(flags: ConnectionFlags, options: { needsClasses?: boolean; mayCreate?: boolean; command: string }): Promise<Connection> {
  const modulePath = flags.dataSource ?? process.env.ORMQ_DATA_SOURCE;
  const url = flags.databaseUrl ?? process.env.ORMQ_DATABASE_URL;
  if (modulePath) {
    const loaded = loadAppModule(modulePath);
    if ("nestModule" in loaded) {
      // Loaded here only: a user without Nest never loads ormq/nestjs (nor @nestjs/*).
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { openNestModule } = require("../nestjs/standalone") as typeof import("../nestjs/standalone");
      const nest = await openNestModule(loaded.nestModule, loaded.file);
      return { dataSource: nest.dataSource, resolver: nest.resolver, fromModule: true, close: nest.close };
    }
    const { dataSource, container } = loaded;
    const opened = !dataSource.isInitialized;
    if (opened) await dataSource.initialize();
    return { dataSource, container, fromModule: true, close: async () => void (opened && (await dataSource.destroy())) };
  }
  if (options.needsClasses) {
    throw new OrmqConfigurationError(
      `ormq ${options.command} needs your DataSource module, which imports the task classes: -d ./dist/data-source.js (or ORMQ_DATA_SOURCE)`,
    );
  }
  if (!url) throw new OrmqConfigurationError("no database: pass -d ./dist/data-source.js or --database-url, or set ORMQ_DATA_SOURCE or ORMQ_DATABASE_URL");
  const dsOptions = ormqDataSourceOptions(url);
  const file = databaseFileOf(dsOptions);
  if (file !== null && !options.mayCreate && !existsSync(file)) {
    throw new OrmqConfigurationError(`no SQLite database at ${file} (run \`ormq migrate\` to create one)`);
  }
  const dataSource = new DataSource({ ...dsOptions, logging: false });
  await dataSource.initialize();
  return { dataSource, fromModule: false, close: () => dataSource.destroy() };
}
