/**
 * The dashboard in a real browser (playwright-core driving Debian's chromium) with a worker running
 * beside it: sign in, the overview, tasks filtered by a class's own column, a task's page, retrying
 * a failed task until it succeeds, pausing and resuming a queue; with screenshots.
 * `npm run screenshots` runs this to regenerate the README's (ORMQ_SCREENSHOTS_DIR=docs/images).
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import type { DataSource } from "typeorm";
import { enqueueMany, processForever, processN } from "../../src";
import { listControls } from "../../src/admin";
import { ormqDashboard } from "../../src/dashboard";
import { WaitedTask, waitEntities } from "../fixtures/schedules";
import { testEntities } from "../fixtures/tasks";
import { memoryLogger, useTestDatabase } from "../support/db";
import { until } from "../support/helpers";
import { SYSTEM_TESTS } from "../support/pgbouncer";

const CHROMIUM = process.env.ORMQ_CHROMIUM ?? "/usr/bin/chromium";
if (!SYSTEM_TESTS) {
  console.log("tests/dashboard/browser.test.ts skipped: it drives a real browser (Debian's chromium); set ORMQ_SYSTEM_TESTS=1, as .ci/run does");
}
const describeSystem = SYSTEM_TESTS ? describe : describe.skip;
const TOKEN = "browser-token-0123456789";

describeSystem("the dashboard in a browser", () => {
  let ds: DataSource;
  let browser: Browser;
  let page: Page;
  let server: Server;
  let url: string;
  const stop = new AbortController();
  let worker: Promise<unknown>;
  const shots = process.env.ORMQ_SCREENSHOTS_DIR ?? join(tmpdir(), `ormq-shots-${process.pid}`);

  afterAll(async () => {
    stop.abort();
    await worker;
    await browser?.close();
    await new Promise<void>((resolve) => {
      if (!server) return resolve();
      server.close(() => resolve());
      server.closeAllConnections(); // idle keep-alive sockets would hold the test process
    });
  });
  useTestDatabase("sqlite", (o) => (ds = o.ds), [...testEntities, ...waitEntities]);
  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: install Debian's chromium (apt-get install chromium), as .ci/run does`);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    console.log(`browser test: playwright-core ${require("playwright-core/package.json").version}, chromium ${browser.version()}`);
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    server = createServer(ormqDashboard({ dataSource: ds, auth: { token: TOKEN } }));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // Some history: successes, one failure for good, one that fails once.
    await enqueueMany(
      [
        ...Array.from({ length: 12 }, (_, n) => WaitedTask.create({ mode: "return", n })),
        WaitedTask.create({ mode: "fail", n: 50 }),
        WaitedTask.create({ mode: "fail_once", n: 42 }).onQueue("reports"),
      ],
      { dataSource: ds },
    );
    await processN(WaitedTask, 100, { dataSource: ds, logger: memoryLogger().logger, scheduler: false });
    worker = processForever(WaitedTask, { dataSource: ds, signal: stop.signal, pollIntervalMs: 100, logger: memoryLogger().logger, scheduler: false });
  }, 60_000);

  it("signs in and shows the overview", async () => {
    await page.goto(`${url}/`);
    expect(page.url()).toBe(`${url}/login`);
    await page.fill('input[name="token"]', TOKEN);
    await page.click('button[type="submit"]');
    await page.waitForSelector("h1:has-text('Overview')");
    expect(await page.textContent("table")).toContain("reports");
    await page.waitForSelector("#chart canvas"); // uPlot drew the finished-per-minute chart
    await page.screenshot({ path: join(shots, "dashboard-overview.png"), fullPage: true });
  });

  it("filters tasks by a class's own column, and opens one", async () => {
    await page.goto(`${url}/tasks?type=waited_task`);
    await page.fill('input[name="f.n.min"]', "3");
    await page.fill('input[name="f.n.max"]', "5");
    await page.click('form.filters button[type="submit"]');
    await page.waitForURL(/f\.n\.min=3/);
    const ids = await page.$$eval("main table tr td a[href*=\"/tasks/\"]", (as) => as.map((a) => a.textContent));
    expect(ids).toHaveLength(3);
    await page.click(`main table tr td a[href*="/tasks/"] >> nth=0`);
    await page.waitForSelector("h1:has-text('Task')");
    expect(await page.textContent("table.fields")).toMatch(/n\s*[345]/);
  });

  it("retries a failed task and sees it succeed", async () => {
    const failed = (await ds.getRepository(WaitedTask).findOneByOrFail({ n: 42 })).id;
    await page.goto(`${url}/tasks/${failed}`);
    expect(await page.textContent("table.fields")).toContain("failed");
    await page.screenshot({ path: join(shots, "dashboard-task.png"), fullPage: true });
    await page.click("button:has-text('Retry')");
    await page.waitForSelector("text=Requeued.");
    await until("the retried task succeeds", async () => {
      await page.goto(`${url}/tasks/${failed}`);
      return /succeeded/.test((await page.textContent("table.fields")) ?? "");
    });
    expect(await page.textContent("main")).toContain('"attempt": 2');
  });

  it("pauses and resumes a queue", async () => {
    await page.goto(`${url}/queues`);
    await page.click("tr:has(td:text-is('reports')) button:has-text('Pause')");
    await page.waitForSelector("text=Queue reports paused");
    expect(await listControls({ dataSource: ds })).toEqual([expect.objectContaining({ name: "reports", paused: true })]);
    await page.goto(`${url}/queues`);
    await page.click("tr:has(td:text-is('reports')) button:has-text('Resume')");
    await page.waitForSelector("text=Queue reports resumed");
    expect((await listControls({ dataSource: ds })).filter((c) => c.paused)).toEqual([]);
    for (const name of ["dashboard-overview.png", "dashboard-task.png"]) {
      expect(readFileSync(join(shots, name)).subarray(1, 4).toString()).toBe("PNG");
    }
  });
});
