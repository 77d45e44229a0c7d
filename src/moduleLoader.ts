/**
 * Loads a user's module that exports a DataSource (the CLI's `--data-source`, a thread's
 * `bootstrap`), the way the TypeORM CLI does. TypeScript is loaded through ts-node, which emits
 * the decorator metadata TypeORM needs; esbuild-based loaders (tsx) emit none, and their entities
 * fail with ColumnTypeUndefinedError, so they are not used here.
 */
import { existsSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import type { DependencyContainer } from "tsyringe";
import { DataSource, InstanceChecker } from "typeorm";
import { OrmqConfigurationError, toError } from "./errors";

/** What a DataSource module gives ormq. */
export interface LoadedModule {
  dataSource: DataSource;
  /** A tsyringe container the module exports as `container`, if any. */
  container?: DependencyContainer;
}

/** A module that exports no DataSource but a Nest module (ormq/nestjs builds its application context). */
export interface LoadedNestModule {
  nestModule: unknown;
  file: string;
}

let tsNodeRegistered = false;

/**
 * Requires `path` (relative to the working directory) and finds its DataSource: the default
 * export, an export named `dataSource` or `AppDataSource`, or the only DataSource it exports.
 * The DataSource is returned as it is: initialized or not.
 */
export function loadDataSourceModule(path: string, label = "data source"): LoadedModule {
  const loaded = loadAppModule(path, label, false);
  return loaded as LoadedModule;
}

/**
 * loadDataSourceModule, or, for a module that exports a NestJS module class instead of a
 * DataSource (the CLI's `-d dist/app.module.js`), that class: the caller builds it with
 * ormq/nestjs, so that a user without Nest never loads it.
 */
export function loadAppModule(path: string, label = "data source", nest = true): LoadedModule | LoadedNestModule {
  const file = isAbsolute(path) ? path : resolve(process.cwd(), path);
  if (!existsSync(file)) throw new OrmqConfigurationError(`${label} module not found: ${file}`);
  if (/\.[cm]?tsx?$/.test(file)) registerTypeScript(file);
  let exports: Record<string, unknown>;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    exports = require(file);
  } catch (err) {
    throw new OrmqConfigurationError(`could not load the ${label} module ${file}: ${toError(err).message}`, { cause: err });
  }
  const candidates = [exports.default, exports.dataSource, exports.AppDataSource, exports];
  let dataSource = candidates.find((c): c is DataSource => InstanceChecker.isDataSource(c));
  if (!dataSource) {
    const all = Object.values(exports).filter((v): v is DataSource => InstanceChecker.isDataSource(v));
    if (all.length === 1) dataSource = all[0];
    else if (all.length > 1) {
      throw new OrmqConfigurationError(`${file} exports ${all.length} DataSources: export the one to use as default or as \`dataSource\``);
    }
  }
  if (!dataSource && nest) {
    const nestModule = [exports.default, exports.AppModule, ...Object.values(exports)].find(isNestModuleClass);
    if (nestModule) return { nestModule, file };
  }
  if (!dataSource) throw new OrmqConfigurationError(`${file} exports no DataSource (as default, \`dataSource\` or \`AppDataSource\`)${nest ? " and no Nest module" : ""}`);
  const container = exports.container as DependencyContainer | undefined;
  if (container !== undefined && typeof container?.resolve !== "function") {
    throw new OrmqConfigurationError(`${file} exports \`container\`, but it is not a tsyringe container`);
  }
  return { dataSource, container };
}

/** A class decorated with Nest's @Module (which records its metadata under these keys). */
function isNestModuleClass(value: unknown): boolean {
  if (typeof value !== "function") return false;
  const keys: unknown[] = (Reflect as unknown as { getMetadataKeys?: (t: object) => unknown[] }).getMetadataKeys?.(value) ?? [];
  return keys.some((k) => k === "imports" || k === "providers" || k === "controllers");
}

function registerTypeScript(file: string): void {
  if (tsNodeRegistered || process.execArgv.some((a) => a.includes("ts-node"))) return;
  let tsNode: { register(options: object): unknown };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    tsNode = require("ts-node");
  } catch {
    throw new OrmqConfigurationError(
      `${file} is TypeScript: install ts-node (npm i -D ts-node), which emits the decorator metadata TypeORM needs, ` +
        "or point ormq at the compiled JavaScript",
    );
  }
  // transpileOnly: no type check at start-up; decorator metadata is still emitted. The module is
  // require()d, so it is compiled to CommonJS whatever the project's tsconfig says (ts-node 10
  // predates TypeScript 6, which rejects the resolution setting ts-node would pair with that).
  tsNode.register({
    transpileOnly: true,
    compilerOptions: { module: "commonjs", moduleResolution: "node10", ignoreDeprecations: "6.0" },
  });
  tsNodeRegistered = true;
}
