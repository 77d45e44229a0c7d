/**
 * ormq/nestjs: the example application under examples/nestjs through HTTP (an order and its task
 * in one transaction, a task that uses a Nest service, the dashboard behind a guard), the worker's
 * lifecycle with the application's, the refusals, and a separate worker process built from the
 * same module by `ormq process -d`. On every database.
 */
import "reflect-metadata";
import { Injectable, Module, Scope, type INestApplication } from "@nestjs/common";
import { ModuleRef, NestFactory } from "@nestjs/core";
import { getDataSourceToken, TypeOrmModule } from "@nestjs/typeorm";
import { join } from "node:path";
import { ChildEntity, DataSource } from "typeorm";
import { BaseTaskEntity, ormqDataSourceOptions, ormqEntities, ormqMigrations, processN, type TaskContext } from "../src";
import { OrmqConfigurationError, TaskDefinitionError } from "../src/errors";
import { OrmqModule, OrmqWorkerHost, ORMQ_CLIENT, type OrmqModuleOptions } from "../src/nestjs";
import type { OrmqClient } from "../src/client/client";
import { nestResolver } from "../src/nestjs/resolver";
import { AppModule } from "../examples/nestjs/app.module";
import { CreateOrders1765000000000 } from "../examples/nestjs/create-orders.migration";
import { Order } from "../examples/nestjs/order.entity";
import { SendOrderConfirmation } from "../examples/nestjs/send-confirmation.task";
import { createTestDb, WITH_MARIADB, type TestDb } from "./support/db";
import { inOwnFlow, until } from "./support/helpers";
import { runCli } from "./support/processes";

const ADMIN_TOKEN = "nest-admin-token-for-tests";

@Injectable({ scope: Scope.REQUEST })
class PerRequest {}

@Injectable()
class Counter {
  count = 0;
}

/** Resolves a request-scoped provider: refused, with the reason. */
@ChildEntity("nest_uses_request_scoped")
class UsesRequestScoped extends BaseTaskEntity {
  static maxAttempts = 1;
  run(ctx: TaskContext) {
    ctx.resolve(PerRequest);
  }
}

/** Counts in a Nest singleton; waits for `gate` first. */
@ChildEntity("nest_gated")
class Gated extends BaseTaskEntity {
  static gate: Promise<void> = Promise.resolve();
  static started = 0;
  async run(ctx: TaskContext) {
    Gated.started++;
    await Gated.gate;
    ctx.resolve(Counter).count++;
    return "done";
  }
}

/** A small application of the test's own, on `url`, with OrmqModule's `options`. */
function testModule(url: string, options: OrmqModuleOptions) {
  @Module({
    imports: [
      TypeOrmModule.forRoot({ ...ormqDataSourceOptions(url), entities: [...ormqEntities, UsesRequestScoped, Gated], migrationsRun: true, logging: false }),
      OrmqModule.forRoot(options),
    ],
    providers: [PerRequest, Counter],
  })
  class TestModule {}
  return TestModule;
}

describe.each(WITH_MARIADB)("ormq/nestjs on %s", (dialect) => {
  let db: TestDb;
  beforeAll(async () => {
    db = await createTestDb(dialect);
  });
  afterAll(async () => {
    await db.drop();
  });

  describe("the example application, through HTTP", () => {
    let app: INestApplication;
    let base: string;
    const saved = { DATABASE_URL: process.env.DATABASE_URL, ADMIN_TOKEN: process.env.ADMIN_TOKEN };
    beforeAll(async () => {
      process.env.DATABASE_URL = db.url;
      process.env.ADMIN_TOKEN = ADMIN_TOKEN;
      app = await NestFactory.create(AppModule, { logger: false });
      await app.listen(0, "127.0.0.1");
      base = (await app.getUrl()).replace("[::1]", "127.0.0.1");
    });
    afterAll(async () => {
      await app?.close();
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    });

    it("POST /orders commits the order and its task together; the worker confirms it through a Nest service", async () => {
      const placed = await fetch(`${base}/orders`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ item: "book" }) });
      expect(placed.status).toBe(201);
      const { id, taskId } = (await placed.json()) as { id: number; taskId: string };
      expect(typeof taskId).toBe("string");
      let order: Order | undefined;
      await until("the order is confirmed", async () => {
        order = (await (await fetch(`${base}/orders/${id}`)).json()) as Order;
        return order.status === "confirmed";
      });
      expect(order).toMatchObject({ id, item: "book", status: "confirmed", confirmationId: "mail_1" });
      const mails = (await (await fetch(`${base}/orders`)).json()) as { subject: string }[];
      expect(mails).toEqual([{ to: `customer-of-order-${id}@example.com`, subject: `Order ${id} confirmed`, id: "mail_1" }]);
      const task = await app.get(DataSource).getRepository(SendOrderConfirmation).findOneByOrFail({ id: taskId });
      expect(task.status).toBe("succeeded");
      expect(task.result).toEqual({ confirmationId: "mail_1" });
    });

    it("a refused order writes neither the order nor its task", async () => {
      const ds = app.get(DataSource);
      const [orders, tasks] = [await ds.getRepository(Order).count(), await ds.getRepository(SendOrderConfirmation).count()];
      const refused = await fetch(`${base}/orders`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ item: "refused" }) });
      expect(refused.status).toBe(400);
      expect(await ds.getRepository(Order).count()).toBe(orders);
      expect(await ds.getRepository(SendOrderConfirmation).count()).toBe(tasks);
    });

    it("the dashboard answers behind the application's guard, and only there", async () => {
      expect((await fetch(`${base}/ormq`)).status).toBe(403);
      expect((await fetch(`${base}/ormq/tasks`, { headers: { "x-admin-token": "wrong" } })).status).toBe(403);
      const overview = await fetch(`${base}/ormq`, { headers: { "x-admin-token": ADMIN_TOKEN } });
      expect(overview.status).toBe(200);
      expect(await overview.text()).toContain("<h1>Overview</h1>");
      const list = await fetch(`${base}/ormq/tasks?type=send_order_confirmation`, { headers: { "x-admin-token": ADMIN_TOKEN } });
      expect(list.status).toBe(200);
      expect(await list.text()).toContain('href="/ormq/tasks/');
    });
  });

  it("the worker starts with the application and stops before the DataSource closes: a running task's outcome is written", async () => {
    let release!: () => void;
    Gated.gate = new Promise<void>((resolve) => (release = resolve));
    Gated.started = 0;
    const app = await NestFactory.createApplicationContext(testModule(db.url, { worker: { pollIntervalMs: 50 } }), { logger: false });
    const ds = app.get(DataSource);
    expect(app.get(OrmqWorkerHost).started).toBe(true);
    const task = await Gated.create({}).save();
    await until("the task started", () => Gated.started === 1);
    const closed = app.close();
    release();
    await closed;
    expect(ds.isInitialized).toBe(false);
    expect(app.get(Counter).count).toBe(1);
    const check = new DataSource({ ...ormqDataSourceOptions(db.url), entities: [...ormqEntities, Gated], logging: false });
    await check.initialize();
    try {
      expect((await check.getRepository(Gated).findOneByOrFail({ id: task.id })).status).toBe("succeeded");
    } finally {
      await check.destroy();
    }
  });

  it("worker: false runs no worker; a request-scoped service is refused with the reason; ORMQ_CLIENT is the DataSource's client", async () => {
    const app = await NestFactory.createApplicationContext(testModule(db.url, { worker: false }), { logger: false });
    try {
      expect(app.get(OrmqWorkerHost).started).toBe(false);
      const client = app.get<OrmqClient>(ORMQ_CLIENT);
      expect(client.dataSource).toBe(app.get(DataSource));
      const task = await UsesRequestScoped.create({}).save();
      await processN(UsesRequestScoped, 1, { dataSource: app.get(DataSource), resolver: nestResolver(app.get(ModuleRef)), logger: silent });
      const failed = await app.get(DataSource).getRepository(UsesRequestScoped).findOneByOrFail({ id: task.id });
      expect(failed.status).toBe("failed");
      expect(failed.lastError).toMatch(/ctx\.resolve\(PerRequest\): PerRequest is a request- or transient-scoped provider; a task runs outside any request/);
    } finally {
      await app.close();
    }
  });

  it("TypeOrmModule options without ormq's subscriber, no worker: concurrent requests' transactions each keep their own", async () => {
    // The subscriber is added by OrmqModule after initialize(): on SQLite the connection must be
    // guarded then, or every request's save() joins whichever transaction is open.
    const { subscribers: _notGiven, ...options } = ormqDataSourceOptions(db.url);
    @Module({ imports: [TypeOrmModule.forRoot({ ...options, entities: [...ormqEntities, Gated], migrationsRun: true, logging: false }), OrmqModule.forRoot({ worker: false })] })
    class EntitiesOnly {}
    const app = await NestFactory.createApplicationContext(EntitiesOnly, { logger: false });
    const ds = app.get(DataSource);
    const saved: string[] = [];
    try {
      const before = await ds.getRepository(Gated).count();
      const outcomes = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          inOwnFlow(() =>
            ds.transaction(async (m) => {
              saved.push((await m.save(Gated.create({}))).id);
              if (i === 0) {
                await new Promise((resolve) => setTimeout(resolve, 30)); // still open while the others start
                throw new Error("request 0 fails");
              }
            }),
          ),
        ),
      );
      expect(outcomes.map((o) => o.status)).toEqual(["rejected", ...Array<string>(9).fill("fulfilled")]);
      expect((await ds.getRepository(Gated).count()) - before).toBe(9);
    } finally {
      await ds.getRepository(Gated).delete(saved); // pending tasks the next tests' workers would run
      await app.close();
    }
  });

  it("forRootAsync: options from an injected provider, on a named @nestjs/typeorm connection", async () => {
    Gated.gate = Promise.resolve();
    Gated.started = 0;
    @Module({ providers: [{ provide: "WORKER_SETTINGS", useValue: { concurrency: 3, pollIntervalMs: 50 } }], exports: ["WORKER_SETTINGS"] })
    class SettingsModule {}
    @Module({
      imports: [
        TypeOrmModule.forRoot({ name: "jobs", ...ormqDataSourceOptions(db.url), entities: [...ormqEntities, UsesRequestScoped, Gated], migrationsRun: true, logging: false }),
        OrmqModule.forRootAsync({ imports: [SettingsModule], inject: ["WORKER_SETTINGS"], useFactory: (settings: object) => ({ worker: settings }), dataSource: "jobs" }),
      ],
      providers: [Counter],
    })
    class AsyncModule {}
    const app = await NestFactory.createApplicationContext(AsyncModule, { logger: false });
    try {
      const jobs = app.get<DataSource>(getDataSourceToken("jobs"));
      expect(app.get<OrmqClient>(ORMQ_CLIENT).dataSource).toBe(jobs);
      expect(app.get(OrmqWorkerHost).started).toBe(true);
      await jobs.getRepository(Gated).save(Gated.create({}));
      await until("the task ran through the application's worker", () => app.get(Counter).count === 1);
    } finally {
      await app.close();
    }
  });

  it("`ormq process -d` runs the tasks with a worker built from the application's Nest module", async () => {
    const ds = new DataSource({ ...ormqDataSourceOptions(db.url), entities: [...ormqEntities, Order, SendOrderConfirmation], migrations: [...ormqMigrations, CreateOrders1765000000000], migrationsRun: true, logging: false });
    await ds.initialize();
    let orderId: number;
    try {
      orderId = (await ds.getRepository(Order).save({ item: "lamp" })).id;
      await ds.getRepository(SendOrderConfirmation).save(SendOrderConfirmation.create({ orderId }));
      await ds.getRepository(SendOrderConfirmation).save(SendOrderConfirmation.create({ orderId }));
    } finally {
      await ds.destroy();
    }
    const module = join(__dirname, "..", "dist", "examples", "nestjs", "app.module.js");
    const result = await runCli(["process", "--until-empty", "--json", "-d", module], { DATABASE_URL: db.url, ADMIN_TOKEN });
    expect(result.stderr).not.toMatch(/"level":50/);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ succeeded: 2 });
    const check = new DataSource({ ...ormqDataSourceOptions(db.url), entities: [...ormqEntities, Order, SendOrderConfirmation], logging: false });
    await check.initialize();
    try {
      expect(await check.getRepository(Order).findOneByOrFail({ id: orderId })).toMatchObject({ status: "confirmed" });
    } finally {
      await check.destroy();
    }
  });
});

describe("ormq/nestjs refusals", () => {
  it("forFeature takes task classes only, and names what it was given", () => {
    expect(() => OrmqModule.forFeature([Order as never])).toThrow(new TaskDefinitionError("OrmqModule.forFeature: Order is not a task class (a @ChildEntity extending BaseTaskEntity)"));
  });

  it("forRoot refuses options it cannot use", () => {
    expect(() => OrmqModule.forRoot({ worker: 3 as never })).toThrow(OrmqConfigurationError);
    expect(() => OrmqModule.forRoot({ dataSource: {} as never })).toThrow(/`dataSource` must be a DataSource or the name of a @nestjs\/typeorm connection/);
  });
});

const silent = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };
