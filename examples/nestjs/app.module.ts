/**
 * A NestJS application on ormq (docs/nestjs.md): @nestjs/typeorm opens the DataSource, OrmqModule
 * runs a worker with the application, and the dashboard is served behind a guard.
 */
import { Injectable, Module, type CanActivate, type ExecutionContext } from "@nestjs/common";
import { TypeOrmModule } from "@nestjs/typeorm";
import { ormqDataSourceOptions, ormqMigrations } from "../../src";
import { OrmqDashboardController, OrmqModule } from "../../src/nestjs";
import { CreateOrders1765000000000 } from "./create-orders.migration";
import { MailerService } from "./mailer.service";
import { Order } from "./order.entity";
import { OrdersController } from "./orders.controller";
import { SendOrderConfirmation } from "./send-confirmation.task";

/** Lets a request in with the admin token (your own authentication goes here). */
@Injectable()
export class AdminGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const token = process.env.ADMIN_TOKEN;
    const given = context.switchToHttp().getRequest<{ headers: Record<string, string | undefined> }>().headers["x-admin-token"];
    return typeof token === "string" && token.length > 0 && given === token;
  }
}

@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      useFactory: () => ({
        ...ormqDataSourceOptions(process.env.DATABASE_URL ?? "./orders.sqlite"),
        migrations: [...ormqMigrations, CreateOrders1765000000000],
        migrationsRun: true,
        autoLoadEntities: true, // ormq's entities come with ormqDataSourceOptions; Order and the tasks below
      }),
    }),
    TypeOrmModule.forFeature([Order]),
    OrmqModule.forRoot({ worker: { concurrency: 10 } }),
    OrmqModule.forFeature([SendOrderConfirmation]),
  ],
  controllers: [OrdersController, OrmqDashboardController({ path: "ormq", guards: [AdminGuard] })],
  providers: [MailerService, AdminGuard],
})
export class AppModule {}
