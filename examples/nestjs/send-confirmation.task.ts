import { ChildEntity, Column } from "typeorm";
import { BaseTaskEntity, type TaskContext } from "../../src";
import { MailerService } from "./mailer.service";
import { Order } from "./order.entity";

/** Mails an order's confirmation, and marks the order confirmed with the task's success. */
@ChildEntity("send_order_confirmation")
export class SendOrderConfirmation extends BaseTaskEntity {
  static maxAttempts = 5;

  @Column({ name: "order_id", type: "integer", nullable: true })
  orderId!: number;

  async run(ctx: TaskContext) {
    const mailer = ctx.resolve(MailerService); // Nest's singleton, through the module's injector
    const confirmationId = await mailer.send(`customer-of-order-${this.orderId}@example.com`, `Order ${this.orderId} confirmed`);
    // The order's update commits with the task's success (or not at all); what the transaction
    // returns is the task's result.
    return ctx.transaction(async (m) => {
      await m.update(Order, { id: this.orderId }, { status: "confirmed", confirmationId });
      return { confirmationId };
    });
  }
}
