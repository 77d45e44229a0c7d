/**
 * ormq quickstart: define two task classes, enqueue some tasks (one batch inside an application
 * transaction that rolls back), run a worker until the queue is empty, and print what happened.
 * Runs on an embedded SQLite file; nothing to install.   npm run quickstart
 */
import "reflect-metadata";
import { rmSync } from "node:fs";
import pino from "pino";
import { ChildEntity, Column, DataSource, Entity, PrimaryGeneratedColumn } from "typeorm";
import { BaseTaskEntity, ormqDataSourceOptions, ormqEntities, processN, type TaskContext } from "../src";

@Entity("orders")
class Order {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ type: "varchar" })
  customer!: string;
}

@ChildEntity("send_email") // the stable key stored in ormq_tasks.type
class SendEmail extends BaseTaskEntity {
  static queue = "emails"; // per-class defaults are static properties
  static maxAttempts = 5;

  @Column({ type: "varchar" })
  to!: string;

  async run(ctx: TaskContext) {
    ctx.logger.info({ to: this.to }, "sending");
    return { sent: true, to: this.to };
  }
}

@ChildEntity("monthly_report")
class MonthlyReport extends BaseTaskEntity {
  static priority = 10; // runs before the emails

  @Column({ type: "integer" })
  month!: number;

  async run(ctx: TaskContext) {
    // ctx.transaction: the task's own reads and writes, committed with its success (the result is
    // what the transaction returns).
    return ctx.transaction(async (m) => ({ month: this.month, orders: await m.count(Order) }));
  }
}

async function main() {
  const file = "./quickstart.sqlite";
  for (const suffix of ["", "-wal", "-shm"]) rmSync(file + suffix, { force: true });

  const dataSource = new DataSource({
    ...ormqDataSourceOptions(file), // ormq's entity, subscriber and migrations on a SQLite file
    entities: [...ormqEntities, SendEmail, MonthlyReport, Order],
    synchronize: true, // fine for a demo; use migrations in an application
  });
  await dataSource.initialize();

  // Enqueue is save(): the task is a row like any other.
  await SendEmail.create({ to: "ada@example.com" }).save();
  await MonthlyReport.create({ month: 11 }).save();

  // Inside the application's own transaction: the order and its email commit together...
  await dataSource.transaction(async (m) => {
    await m.save(m.create(Order, { customer: "grace" }));
    await m.save(SendEmail.create({ to: "grace@example.com" }));
  });
  // ...or not at all.
  await dataSource
    .transaction(async (m) => {
      await m.save(m.create(Order, { customer: "mallory" }));
      await m.save(SendEmail.create({ to: "mallory@example.com" }));
      throw new Error("payment declined");
    })
    .catch((err: Error) => console.log(`rolled back (${err.message}): no order, no email task`));

  // Work until nothing is ready. In a service, processForever(BaseTaskEntity) instead.
  const summary = await processN(BaseTaskEntity, 100, { dataSource, logger: pino({ level: "warn" }) });
  console.log("worker summary:", summary);

  // Every task, each loaded as its own class.
  for (const task of await dataSource.getRepository(BaseTaskEntity).find({ order: { id: "ASC" } })) {
    console.log(`#${task.id} ${task.type.padEnd(15)} ${task.status.padEnd(10)} attempts=${task.attempts} result=${JSON.stringify(task.result)}`);
  }
  await dataSource.destroy();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
