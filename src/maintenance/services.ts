/**
 * What runs beside a worker's claim loop, as a list: each service is started in turn and the list
 * is stopped in reverse order, each stop awaited even when an earlier one failed (River's
 * maintenance services, Oban's plugins). A worker's list: the heartbeat, the rescuer, the pruner,
 * the scheduler, the cancel watcher and the controls watch.
 */
import type { Logger } from "../logger";

/** A running service: stopping waits for any work in progress. */
export interface Service {
  stop(): Promise<void>;
}

export class Services {
  private readonly started: { name: string; service: Service }[] = [];

  constructor(private readonly logger: Logger) {}

  /** Adds a started service. */
  add<T extends Service>(name: string, service: T): T {
    this.started.push({ name, service });
    return service;
  }

  /** Stops every service, the last started first; a stop that fails is logged and the rest go on. */
  async stopAll(): Promise<void> {
    for (const { name, service } of this.started.splice(0).reverse()) {
      try {
        await service.stop();
      } catch (err) {
        this.logger.warn({ err, service: name }, "a worker service failed to stop");
      }
    }
  }
}
