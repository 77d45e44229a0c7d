import { randomUUID } from "node:crypto";
import type { DataSource } from "typeorm";
import { hostname } from "node:os";
import { createDialect, type ClaimFilter, type RescuedTask } from "../dialect";
import { countReadyTasks } from "../dialect/taskReads";
import type { TransientReason } from "../dialect/contract";
import { concerns } from "../client/announcements";
import { TaskSubscriber } from "../enqueue/subscriber";
import { OrmqConfigurationError, toError } from "../errors";
import type { Logger } from "../logger";
import { startHeartbeat } from "../maintenance/heartbeat";
import { Maintainer } from "../maintenance/maintainer";
import { Services } from "../maintenance/services";
import { startPruner } from "../maintenance/pruner";
import { startRescuer } from "../maintenance/rescuer";
import { startScheduler } from "../maintenance/scheduler";
import { type TaskClass } from "../registry";
import { startCancelWatcher } from "./cancelWatcher";
import { DatabaseBackoff } from "./backoff";
import { runClaimLoop } from "./claimLoop";
import { PrefetchGauge } from "./prefetchGauge";
import { Completer } from "./completer";
import { DependencySettler } from "../workflow/settler";
import { sweepDependencies } from "../workflow/dependencies";
import { Doze } from "./doze";
import { HeldTasks, type ProcessSummary } from "./heldTasks";
import type { ResolvedOptions } from "./options";
import { finishRunning } from "./running";
import { selectTypes } from "./typeSelection";
import { claimedColumns } from "./hydrate";
import { FlowGate } from "./flowGate";
import { startControlsWatch } from "./controlsWatch";
import { ormqFor } from "../client/client";

export type { ProcessSummary };

/** Workers of this process whose run() has not returned (tests check that none is left behind). */
let running = 0;

/** How many workers of this process are running. */
export function liveWorkers(): number {
  return running;
}

/**
 * A worker's lifecycle: it checks its types, opens its dialect and completer, registers, starts
 * its maintenance (heartbeat, rescue, prune), its cancel watcher and its wake-ups, runs the claim
 * loop (claimLoop.ts) over the tasks it holds (heldTasks.ts), and when the loop ends lets running
 * tasks finish or hands them back (running.ts) before it closes everything in order.
 */
export class Worker {
  readonly id = `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
  private failure: unknown;
  private readonly logger: Logger;
  private stopRequested = false;
  private stopNow: (() => void) | undefined;
  private readonly stopped = new Promise<void>((resolve) => (this.stopNow = resolve));
  /** The claim loop sleeps on this; a wake-up cuts a sleep short, or the next one if none is on. */
  private readonly doze = new Doze();
  /** The tasks held, while the worker runs. */
  private held: HeldTasks | undefined;

  constructor(
    private readonly taskClass: TaskClass,
    private readonly options: ResolvedOptions,
    /** Claim at most this many tasks in all, then finish (processN); Infinity runs until stopped. */
    private readonly limit: number,
  ) {
    this.logger = options.logger.child({ workerId: this.id });
  }

  /** The last task this worker started (processOne reports it). */
  get lastTaskId(): string | undefined {
    return this.held?.lastTaskId;
  }

  private endGrace: (() => void) | undefined;
  private readonly graceEnded = new Promise<void>((resolve) => (this.endGrace = resolve));

  /** Ends the grace period at once: running tasks' signals abort now. */
  skipGrace(): void {
    this.endGrace?.();
  }

  /** Asks the worker to stop: no more claims, running tasks get the grace period. */
  stop(): void {
    if (this.stopRequested) return;
    this.stopRequested = true;
    this.stopNow?.();
    this.doze.wake();
  }

  /** Runs until the limit is reached and no task is ready, or until stopped. */
  async run(): Promise<ProcessSummary> {
    running++;
    try {
      return await this.runToEnd();
    } finally {
      running--;
    }
  }

  private async runToEnd(): Promise<ProcessSummary> {
    const { dataSource, signal } = this.options;
    const client = ormqFor(dataSource);
    const registry = client.registry;
    client.prepare(); // before the dialect connects
    const types = selectTypes(this.taskClass, registry.typesFor(this.taskClass), this.options);
    if (!dataSource.subscribers.some((s) => s instanceof TaskSubscriber)) {
      throw new OrmqConfigurationError("ormq's subscriber is not registered: add ...ormqSubscribers to the DataSource's `subscribers`");
    }
    const typeByKey = new Map(types.map((t) => [t.key, t]));
    const { pooler, listenUrl } = this.options;
    const onTransientRetry = (reason: TransientReason) => client.events.emit("database:retried", { workerId: this.id, reason });
    const dialect = createDialect(dataSource, this.id, this.logger, { slowConnectionMs: this.options.leaseMs, pooler, listenUrl, origin: client.origin, onTransientRetry });
    const completer = new Completer(dialect, this.logger);
    const settler = new DependencySettler(client, this.logger);
    const gauge = new PrefetchGauge(this.options.prefetch, this.options.concurrency);
    const held = new HeldTasks({
      options: this.options,
      logger: this.logger,
      workerId: this.id,
      typeByKey,
      events: client.events,
      middleware: client.middleware,
      prepareDataSource: () => client.prepare(),
      completer,
      wake: (kind) => this.doze.wake(kind),
      stopRequested: () => this.stopRequested,
      onAbandonLimit: (err) => {
        this.failure ??= err;
        this.stop();
      },
      onRunTime: (ms) => gauge.ranFor(ms),
      onFinished: (id, status) => settler.finished(id, status),
    });
    this.held = held;
    const onAbort = () => this.stop();
    signal?.addEventListener("abort", onAbort);
    if (signal?.aborted) this.stop();
    const myTypes = new Set(typeByKey.keys());
    const onAnnounced = (announcements: readonly string[] | null) => {
      if (concerns(announcements, myTypes, this.options.queues)) this.doze.wake();
    };
    const unsubscribe = client.announcements.onCommitted(onAnnounced);
    // The worker's own observers (options.metrics, onAttemptFinished) are subscribers of its
    // client's events, for this worker's attempts.
    const { metrics, onAttemptFinished } = this.options;
    const unobserveAttempts =
      metrics || onAttemptFinished
        ? client.on("task:finished", ({ workerId, taskId, type, queue, outcome, durationMs }) => {
            if (workerId !== this.id) return;
            const event = { taskId, type, queue, outcome, durationMs };
            metrics?.attemptFinished(event);
            onAttemptFinished?.(event);
          })
        : undefined;
    const unobserveRetries = metrics?.transientRetry
      ? client.on("database:retried", ({ workerId, reason }) => workerId === this.id && metrics.transientRetry?.(reason))
      : undefined;
    const unobserve = () => {
      unobserveAttempts?.();
      unobserveRetries?.();
    };
    // Beside the claim loop, started in turn and stopped in reverse once the running tasks are done.
    const services = new Services(this.logger);
    services.add("cancel watcher", startCancelWatcher(dialect, this.logger, () => held.cancellable(), (ids) => held.cancelRequested(ids)));
    // The rescue, the prune and the schedules' ticks are done by one worker at a time (the holder
    // of each one's lease); released when this worker stops, after those jobs have stopped.
    const maintainer = services.add("maintenance leases", new Maintainer(dataSource, this.id, this.options.leaseMs, this.logger));
    const { heartbeatIntervalMs, rescueIntervalMs, leaseMs, queues } = this.options;
    let registered = false;
    try {
      await dialect.registerWorker({ name: this.taskClass.name, host: hostname(), pid: process.pid, queues, fair: types.some((t) => t.fairness !== null) });
      registered = true;
      services.add(
        "heartbeat",
        startHeartbeat(dialect, heartbeatIntervalMs, leaseMs, () => held.heldIds(), (id) => held.stillRunning(id), this.logger, (renewal, asked, at) =>
          held.leasesRenewed(renewal, asked, at),
        ),
      );
      // The rescue's lease holder also sweeps workflows' dependencies that a crash left unsettled.
      const afterRescue = async (rescued: readonly RescuedTask[]) => {
        for (const t of rescued) if (t.status !== "pending" && t.status !== "succeeded") settler.finished(t.id, t.status);
        await sweepDependencies(client);
      };
      services.add("rescuer", startRescuer(dialect, rescueIntervalMs, this.logger, client.events, maintainer.gate("rescue"), afterRescue));
      if (this.options.prune) services.add("pruner", startPruner(dataSource, this.options.prune, this.logger, maintainer.gate("prune")));
      // Every class schedule the DataSource knows, not only this worker's types: a schedule is
      // declared in code, whoever runs its tasks.
      if (this.options.scheduler) {
        const scheduler = await this.waitingOutOutages("starting the scheduler", () => startScheduler(dataSource, [...registry.byKey.values()], this.logger, maintainer.gate("schedule")));
        if (scheduler) services.add("scheduler", scheduler);
      }
      await dialect.listen(onAnnounced);
      const request = { types: [...typeByKey.keys()], queues, leaseMs, columns: claimedColumns(types.map((t) => t.metadata)) };
      const gate = new FlowGate(dialect, types, request);
      // Before the first claim: a paused queue is never claimed from. (Stopped before it could be
      // read, the claim loop returns without claiming.)
      await this.waitingOutOutages("reading the queue controls", () => gate.refresh());
      services.add("controls watch", startControlsWatch(gate, held, this.logger, () => this.doze.wake("work")));
      this.logger.info({ types: [...typeByKey.keys()], queues: this.options.queues, concurrency: this.options.concurrency, paused: gate.paused }, "worker started");
      client.events.emit("worker:started", { workerId: this.id, types: [...typeByKey.keys()], queues: this.options.queues });
      await runClaimLoop({
        dialect,
        held,
        options: this.options,
        gauge,
        request,
        claim: (want) => gate.claim(want),
        limitsActive: () => gate.limitsActive,
        limit: this.limit,
        // Tasks a pause or a limit holds back are not looked at again (they are the summary's heldBack).
        settling: () => (settler.busy ? settler.idle() : undefined),
        readyLeft: dialect.claimMaySkipReady
          ? async () => !gate.limitsActive && gate.paused.queues.length + gate.paused.types.length === 0 && (await countHeldBack(dataSource, request, this.logger)) > 0
          : undefined,
        logger: this.logger,
        doze: this.doze,
        stopRequested: () => this.stopRequested,
      });
      // processN stopped with nothing claimable: say how many ready tasks a pause or a limit held back.
      if (this.limit !== Infinity && !this.stopRequested && held.claimed < this.limit && (gate.limitsActive || gate.paused.queues.length + gate.paused.types.length > 0)) {
        held.summary.heldBack = await countHeldBack(dataSource, request, this.logger);
      }
    } catch (err) {
      this.failure ??= err;
      this.stop(); // running tasks get the grace period, as on a signal
    }
    try {
      // Running tasks finish (or are handed back) and their outcomes are written before the
      // dialect's connections close, even when the loop failed.
      await finishRunning(held.running, completer, this.logger, {
        gracePeriodMs: this.options.gracePeriodMs,
        stopRequested: () => this.stopRequested,
        stopped: this.stopped,
        graceEnded: this.graceEnded,
      });
    } finally {
      // The heartbeat runs until the last running task is done: a task in its grace period keeps
      // its lease.
      await services.stopAll();
      if (registered) await dialect.markStopped().catch((err) => this.logger.warn({ err }, "could not mark the worker stopped"));
      unsubscribe();
      unobserve();
      signal?.removeEventListener("abort", onAbort);
      await held.close();
      await settler.idle(); // the dependents of the last outcomes are released before it returns
      await dialect.close();
      this.logger.info({ ...held.summary }, "worker stopped");
      client.events.emit("worker:stopped", { workerId: this.id, processed: held.summary.processed });
    }
    if (this.failure !== undefined) throw toError(this.failure);
    return { ...held.summary };
  }

  /**
   * Runs a step of the worker's start until it succeeds, waiting out a database that went away
   * after the worker registered (see DatabaseBackoff). Undefined when the worker is stopped first.
   */
  private async waitingOutOutages<T>(what: string, step: () => Promise<T>): Promise<T | undefined> {
    const backoff = new DatabaseBackoff(this.limit !== Infinity);
    while (!this.stopRequested) {
      try {
        return await step();
      } catch (err) {
        const delay = backoff.failed(err);
        this.logger.warn({ err, retryInMs: delay }, `${what} failed; retrying`);
        await this.doze.sleep(delay);
      }
    }
    return undefined;
  }
}

/** Ready tasks of a worker's types and queues (what a pause or a limit left behind); 0 when it cannot tell. */
async function countHeldBack(dataSource: DataSource, filter: ClaimFilter, logger: Logger): Promise<number> {
  try {
    return await countReadyTasks(dataSource, filter, await ormqFor(dataSource).clock.now());
  } catch (err) {
    logger.debug({ err }, "could not count the tasks left behind");
    return 0;
  }
}
