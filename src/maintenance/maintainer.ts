/**
 * Which worker does a maintenance job (the rescue, the prune, the scheduler's ticks): the one
 * that holds the job's lease (dialect/maintenanceLease.ts). Every worker runs the job's timer; at
 * each round a worker that does not hold the lease, and cannot take it, skips the round. With many
 * workers on one database, one rescues, prunes and ticks while the others idle in it; when it
 * dies, another takes over within a lease (`leaseMs`), and at once when it stops.
 */
import type { DataSource } from "typeorm";
import { ormqFor } from "../client/client";
import { holdLease, leaseHolder, releaseLease } from "../dialect/maintenanceLease";
import type { Logger } from "../logger";

export type MaintenanceJob = "rescue" | "prune" | "schedule";

export class Maintainer {
  private readonly holder: string;
  private readonly held = new Set<MaintenanceJob>();
  /** The last lease check failed (logged once until one works). */
  private failing = false;

  constructor(
    private readonly dataSource: DataSource,
    workerId: string,
    private readonly leaseMs: number,
    private readonly logger: Logger,
  ) {
    this.holder = leaseHolder(workerId);
  }

  /**
   * Whether this worker does `job` this round (taking or renewing its lease). When the lease
   * cannot be read or written, it does the job anyway: the jobs' statements are guarded, so two
   * workers doing one round is harmless, while nobody rescuing would strand tasks.
   */
  async mine(job: MaintenanceJob): Promise<boolean> {
    let mine: boolean;
    try {
      const now = await ormqFor(this.dataSource).clock.now();
      mine = await holdLease(this.dataSource.manager, job, this.holder, now, this.leaseMs);
      this.failing = false;
    } catch (err) {
      if (!this.failing) this.logger.warn({ err, job }, "could not check the maintenance lease; doing the job anyway");
      this.failing = true;
      return true;
    }
    if (mine !== this.held.has(job)) {
      if (mine) this.held.add(job);
      else this.held.delete(job);
      this.logger.debug({ job }, mine ? "this worker now does this maintenance job" : "another worker does this maintenance job now");
    }
    return mine;
  }

  /** A check for one job, to hand to that job's loop. */
  gate(job: MaintenanceJob): () => Promise<boolean> {
    return () => this.mine(job);
  }

  /** Gives up the leases this worker holds (it is stopping): another worker takes them at once. */
  async stop(): Promise<void> {
    for (const job of this.held) {
      await releaseLease(this.dataSource.manager, job, this.holder).catch((err: unknown) => this.logger.debug({ err, job }, "could not release a maintenance lease"));
    }
    this.held.clear();
  }
}
