import { BadRequestException, Body, Controller, Get, NotFoundException, Param, ParseIntPipe, Post } from "@nestjs/common";
import { InjectDataSource } from "@nestjs/typeorm";
import type { DataSource } from "typeorm";
import { MailerService } from "./mailer.service";
import { Order } from "./order.entity";
import { SendOrderConfirmation } from "./send-confirmation.task";

@Controller("orders")
export class OrdersController {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly mailer: MailerService,
  ) {}

  /** The order and its confirmation task commit together, or neither does. */
  @Post()
  async place(@Body() body: { item?: unknown }) {
    if (typeof body?.item !== "string" || body.item.length === 0 || body.item.length > 100) throw new BadRequestException("item: 1 to 100 characters");
    const item = body.item;
    return this.dataSource.transaction(async (m) => {
      const order = await m.save(m.create(Order, { item }));
      const task = await m.save(SendOrderConfirmation.create({ orderId: order.id }));
      if (item === "refused") throw new BadRequestException("this item cannot be ordered"); // rolls both back
      return { id: order.id, taskId: task.id };
    });
  }

  @Get(":id")
  async show(@Param("id", ParseIntPipe) id: number) {
    const order = await this.dataSource.getRepository(Order).findOneBy({ id });
    if (!order) throw new NotFoundException();
    return order;
  }

  @Get()
  mails() {
    return this.mailer.sent;
  }
}
