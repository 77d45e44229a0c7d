/**
 * The worker an application runs under Nest's lifecycle: started once the application has
 * bootstrapped (every module's providers ready, the DataSource open), stopped in
 * beforeApplicationShutdown, so that its running tasks get their grace and their outcomes are
 * written before @nestjs/typeorm closes the DataSource in onApplicationShutdown. With
 * `app.enableShutdownHooks()`, SIGTERM goes through the same path.
 *
 * It does not install signal handlers of its own (processForever does): in an application the
 * process's signals are Nest's, and a worker that caught SIGTERM would keep the HTTP server alive.
 */
import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from "@nestjs/common";
import { ModuleRef } from "@nestjs/core";
import type { DataSource } from "typeorm";
import { BaseTaskEntity } from "../../entities/BaseTaskEntity";
import { toError } from "../errors";
import { getDefaultLogger } from "../logger";
import { resolveOptions } from "../worker/options";
import { Worker, type ProcessSummary } from "../worker/worker";
import { nestResolver } from "./resolver";
import { inAppWorkersEnabled, ORMQ_DATA_SOURCE, ORMQ_OPTIONS, type OrmqModuleOptions } from "./tokens";

@Injectable()
export class OrmqWorkerHost implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly stop = new AbortController();
  private running: Promise<ProcessSummary | undefined> | undefined;

  constructor(
    @Inject(ORMQ_OPTIONS) private readonly options: OrmqModuleOptions,
    @Inject(ORMQ_DATA_SOURCE) private readonly dataSource: DataSource,
    private readonly moduleRef: ModuleRef,
  ) {}

  /** Whether this application's worker is running. */
  get started(): boolean {
    return this.running !== undefined;
  }

  onApplicationBootstrap(): void {
    const given = this.options.worker ?? true;
    if (given === false || !inAppWorkersEnabled()) return;
    const options = given === true ? {} : given;
    // Checked here, synchronously: a bad option fails the application's start, with its name.
    const resolved = resolveOptions(BaseTaskEntity, { ...options, dataSource: this.dataSource, signal: this.stop.signal, resolver: nestResolver(this.moduleRef) });
    const worker = new Worker(BaseTaskEntity, resolved, Infinity);
    this.running = worker.run().catch((err: unknown) => {
      (options.logger ?? getDefaultLogger()).error({ err: toError(err) }, "the application's ormq worker stopped on an error");
      return undefined;
    });
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stop.abort();
    await this.running;
  }
}
