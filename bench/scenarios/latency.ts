/**
 * Latency: an idle worker; tasks enqueued one at a time; time from the enqueuing commit to run()
 * starting. The commit time is taken in an afterTransactionCommit subscriber, so it is the moment
 * the database acknowledged the COMMIT in this process.
 */
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { ChildEntity, EventSubscriber, type EntitySubscriberInterface, type DataSource } from "typeorm";
import { BaseTaskEntity, processForever } from "../../src";
import { Databases, open, percentile, type DatabaseName, type Result } from "../common";

const started = new Map<string, number>();
let lastCommitAt = 0;

/** Records when run() starts. */
@ChildEntity("bench_latency")
export class LatencyProbe extends BaseTaskEntity {
  async run() {
    started.set(this.id, performance.now());
  }
}

/** Records when a transaction committed (for every DataSource it is registered with). */
@EventSubscriber()
export class CommitClock implements EntitySubscriberInterface {
  afterTransactionCommit(): void {
    lastCommitAt = performance.now();
  }
}

/**
 * `via`: "same" enqueues through the worker's DataSource (this process's wake-up); "other" through
 * a second DataSource, as another process would (PostgreSQL's NOTIFY).
 */
export async function latency(databases: Databases, database: DatabaseName, samples: number, via: "same" | "other" = "same"): Promise<Result> {
  const url = await databases.fresh(database);
  const probe = { entities: [LatencyProbe], subscribers: [CommitClock] };
  const ds = await open(url, probe);
  const enqueuer: DataSource = via === "same" ? ds : await open(url, { ...probe, migrationsRun: false });
  const controller = new AbortController();
  const worker = processForever(LatencyProbe, { dataSource: ds, signal: controller.signal, concurrency: 10, logger: pino({ level: "warn" }) });
  try {
    await sleep(200); // the worker has registered and is asleep
    const times: number[] = [];
    for (let i = 0; i < samples; i++) {
      const task = await enqueuer.getRepository(LatencyProbe).save(LatencyProbe.create({}));
      const committedAt = lastCommitAt;
      const deadline = Date.now() + 5_000;
      while (!started.has(task.id)) {
        if (Date.now() > deadline) throw new Error(`latency: task ${task.id} did not start within 5 s`);
        await sleep(0.2);
      }
      times.push(started.get(task.id)! - committedAt);
      await sleep(1 + Math.random() * 2); // idle again before the next one
    }
    times.sort((a, b) => a - b);
    return {
      scenario: "latency",
      database,
      variant: via === "same" ? "commit → run() start, enqueued in the worker's process" : "commit → run() start, enqueued through another connection",
      tasks: samples,
      p50: percentile(times, 50),
      p95: percentile(times, 95),
      p99: percentile(times, 99),
      max: percentile(times, 100),
    };
  } finally {
    controller.abort();
    await worker;
    if (enqueuer !== ds) await enqueuer.destroy();
    await ds.destroy();
    started.clear();
  }
}
