/**
 * The dashboard mounted in Express, NestJS, Fastify and Koa under /ormq, as the README and
 * docs/dashboard.md show:
 * pages answer under the prefix, links carry it, and the host application's own routes still work.
 */
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { Controller, Get, Module } from "@nestjs/common";
import { NestFactory } from "@nestjs/core";
import express from "express";
import Fastify from "fastify";
import Koa from "koa";
import type { DataSource } from "typeorm";
import { ormqDashboard } from "../../src/dashboard";
import { testEntities } from "../fixtures/tasks";
import { useTestDatabase } from "../support/db";

const TOKEN = "mount-token-0123456789";
const auth = { Authorization: `Bearer ${TOKEN}` };

async function check(url: string): Promise<void> {
  const page = await fetch(`${url}/ormq/tasks`, { headers: auth });
  expect(page.status).toBe(200);
  const body = await page.text();
  expect(body).toContain('href="/ormq/assets/dashboard.css"');
  expect(body).toContain('action="/ormq/tasks"');
  expect((await fetch(`${url}/ormq/assets/dashboard.js`)).status).toBe(200);
  expect((await fetch(`${url}/ormq`, { headers: auth })).status).toBe(200);
  expect(await (await fetch(`${url}/app`)).text()).toBe("the application");
}

// closeAllConnections: fetch keeps idle sockets open, which would hold the test process after the run.
const close = (server: Server) => new Promise<void>((resolve) => {
  server.close(() => resolve());
  server.closeAllConnections();
});
const urlOf = (server: Server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

/** Starts an application's server (`listen` calls `ready` once it listens), checks it, closes it. */
async function checkListening(listen: (ready: () => void) => Server): Promise<void> {
  const server = await new Promise<Server>((resolve) => {
    const s = listen(() => resolve(s));
  });
  try {
    await check(urlOf(server));
  } finally {
    await close(server);
  }
}

/** A NestJS application with one route of its own. */
@Controller()
class AppController {
  @Get("app")
  app(): string {
    return "the application";
  }
}

@Module({ controllers: [AppController] })
class AppModule {}

describe("the dashboard mounted in web frameworks", () => {
  let ds: DataSource;
  useTestDatabase("sqlite", (o) => (ds = o.ds), testEntities);

  it("Express: app.use('/ormq', dashboard)", async () => {
    const app = express();
    app.use("/ormq", ormqDashboard({ dataSource: ds, auth: { token: TOKEN } }));
    app.get("/app", (_req, res) => void res.send("the application"));
    await checkListening((ready) => app.listen(0, "127.0.0.1", ready));
  });

  it("NestJS (on Express): app.use('/ormq', dashboard) in main.ts", async () => {
    const app = await NestFactory.create(AppModule, { logger: false });
    app.use("/ormq", ormqDashboard({ dataSource: ds, auth: { token: TOKEN } }));
    await app.listen(0, "127.0.0.1");
    try {
      await check(urlOf(app.getHttpServer() as Server));
    } finally {
      await app.close();
    }
  });

  it("Fastify: the raw request and response, with basePath", async () => {
    const fastify = Fastify();
    const mounted = ormqDashboard({ dataSource: ds, auth: { token: TOKEN }, basePath: "/ormq" });
    for (const path of ["/ormq", "/ormq/*"]) {
      fastify.all(path, (req, reply) => {
        reply.hijack();
        mounted(req.raw, reply.raw);
      });
    }
    fastify.get("/app", async () => "the application");
    await fastify.listen({ port: 0, host: "127.0.0.1" });
    try {
      await check(urlOf(fastify.server));
    } finally {
      await fastify.close();
    }
  });

  it("Koa: ctx.respond = false, with basePath", async () => {
    const app = new Koa();
    const mounted = ormqDashboard({ dataSource: ds, auth: { token: TOKEN }, basePath: "/ormq" });
    app.use(async (ctx, next) => {
      if (ctx.path !== "/ormq" && !ctx.path.startsWith("/ormq/")) return next();
      ctx.respond = false;
      mounted(ctx.req, ctx.res);
    });
    app.use(async (ctx) => {
      if (ctx.path === "/app") ctx.body = "the application";
    });
    await checkListening((ready) => app.listen(0, "127.0.0.1", ready));
  });
});
