/**
 * An order as a workflow (docs/workflows.md): charge it; then reserve its stock and send its mail
 * in parallel; then a summary once all three succeeded. The order and its four tasks commit in one
 * transaction; each task's own writes commit with its success (ctx.transaction). The charge fails
 * its first attempt, to show that the others wait for its retry.
 * Runs on an embedded SQLite file:   npm run build && node dist/examples/order-workflow.js
 */
import "reflect-metadata";
import { rmSync } from "node:fs";
import pino from "pino";
import { ChildEntity, Column, DataSource, Entity, PrimaryGeneratedColumn } from "typeorm";
import { BaseTaskEntity, fixedDelay, ormqDataSourceOptions, ormqEntities, processForever, type TaskContext } from "../src";

@Entity("orders")
export class Order {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ type: "varchar" })
  status!: "placed" | "paid" | "reserved";

  @Column({ type: "varchar", nullable: true })
  paymentId!: string | null;
}

/** Charges the order: the payment provider first, then the order's row with the attempt's success. */
@ChildEntity("charge")
export class Charge extends BaseTaskEntity {
  static maxAttempts = 3;
  static retry = fixedDelay(100);

  @Column({ type: "integer" })
  orderId!: number;

  async run(ctx: TaskContext) {
    if (ctx.attempt === 1) throw new Error("payment provider timed out"); // retried
    const payment = { id: `pay_${this.orderId}` }; // a real provider's call goes here, outside the transaction
    return ctx.transaction(async (m) => {
      await m.update(Order, { id: this.orderId }, { status: "paid", paymentId: payment.id });
      return { paymentId: payment.id };
    });
  }
}

@ChildEntity("reserve_stock")
export class ReserveStock extends BaseTaskEntity {
  @Column({ type: "integer" })
  orderId!: number;

  async run(ctx: TaskContext) {
    return ctx.transaction(async (m) => {
      await m.update(Order, { id: this.orderId }, { status: "reserved" });
      return { reserved: 1 };
    });
  }
}

@ChildEntity("send_mail")
export class SendMail extends BaseTaskEntity {
  @Column({ type: "integer" })
  orderId!: number;

  async run() {
    return { mailed: `order ${this.orderId} confirmed` };
  }
}

@ChildEntity("order_summary")
export class OrderSummary extends BaseTaskEntity {
  @Column({ type: "integer" })
  orderId!: number;

  async run(ctx: TaskContext) {
    // Each dependency, loaded as its own class, with its result.
    const dependencies = await ctx.dependencies<BaseTaskEntity>();
    const [charge, stock, mail] = [Charge, ReserveStock, SendMail].map((cls) => dependencies.find((d) => d instanceof cls)!);
    return { charge: charge.result, stock: stock.result, mailed: mail.status === "succeeded" };
  }
}

export async function main(file = "./order-workflow.sqlite"): Promise<Record<string, unknown>> {
  for (const suffix of ["", "-wal", "-shm"]) rmSync(file + suffix, { force: true });
  const dataSource = new DataSource({
    ...ormqDataSourceOptions(file),
    entities: [...ormqEntities, Order, Charge, ReserveStock, SendMail, OrderSummary],
    synchronize: true, // fine for an example; use migrations in an application
  });
  await dataSource.initialize();
  try {
    // The order and its workflow commit together.
    const summary = await dataSource.transaction(async (m) => {
      const order = await m.save(m.create(Order, { status: "placed", paymentId: null }));
      const charge = Charge.create({ orderId: order.id });
      const stock = ReserveStock.create({ orderId: order.id, dependsOn: [charge] });
      const mail = SendMail.create({ orderId: order.id, dependsOn: [charge] });
      const last = OrderSummary.create({ orderId: order.id, dependsOn: [charge, stock, mail] });
      await m.save([charge, stock, mail, last]);
      return last;
    });

    // A worker runs it (the charge's retry included) while we wait for the summary's result.
    const stop = new AbortController();
    const worker = processForever(BaseTaskEntity, { dataSource, logger: pino({ level: "error" }), signal: stop.signal });
    await summary.waitForResult({ timeoutMs: 30_000 });
    stop.abort();
    await worker;

    const done = await dataSource.getRepository(OrderSummary).findOneByOrFail({ id: summary.id });
    const order = await dataSource.getRepository(Order).findOneByOrFail({ id: done.orderId });
    console.log(`order ${order.id}: ${order.status}, payment ${order.paymentId}`);
    console.log(`summary: ${done.status} ${JSON.stringify(done.result)}`);
    return { order, summary: { status: done.status, result: done.result } };
  } finally {
    await dataSource.destroy();
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
