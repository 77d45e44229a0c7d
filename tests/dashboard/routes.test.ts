/**
 * The dashboard's routes against real databases: every page, every action, authentication (token,
 * login form and cookie, hook), CSRF, read-only mode, escaping of hostile values, security
 * headers, 400s for bad input, the shared overview read, and mounting under a path.
 */
import { createServer, request, type Server } from "node:http";
import { hostname, networkInterfaces } from "node:os";
import { connect, type AddressInfo } from "node:net";
import fc from "fast-check";
import { In, type DataSource, type Logger as OrmLogger } from "typeorm";
import { BaseTaskEntity, enqueueMany, InvalidOptionError, processN } from "../../src";
import { cancelTask, createSchedule, countFinishedByMinute, listControls, listSchedules } from "../../src/admin";
import { ormqDashboard, type DashboardOptions } from "../../src/dashboard";
import { WaitedTask, waitEntities } from "../fixtures/schedules";
import { SendEmail, testEntities } from "../fixtures/tasks";
import { isLoopback, isLoopbackHost } from "../../src/dashboard/auth";
import { WITH_MARIADB, memoryLogger, openDataSource, useTestDatabase, type TestDb } from "../support/db";

const TOKEN = "test-token-0123456789";
const HOSTILE = `<script>alert(1)</script>"><img src=x onerror=alert(1)>`;

async function serve(options: DashboardOptions, host = "127.0.0.1"): Promise<{ url: string; server: Server }> {
  const server = createServer(ormqDashboard(options));
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

// closeAllConnections: fetch keeps idle sockets open, which would hold the test process after the run.
const close = (server: Server) => new Promise<void>((resolve) => {
  server.close(() => resolve());
  server.closeAllConnections();
});

describe.each(WITH_MARIADB)("dashboard on %s", (dialect) => {
  let ds: DataSource;
  let db: TestDb;
  let url: string;
  let server: Server;
  const auth = { Authorization: `Bearer ${TOKEN}` };
  const get = (path: string, headers: Record<string, string> = auth) => fetch(url + path, { headers, redirect: "manual" });
  const csrfOf = async (path = "/queues") => /name="_csrf" value="([^"]+)"/.exec(await (await get(path)).text())![1];
  const post = async (path: string, fields: Record<string, string>, headers: Record<string, string> = auth) =>
    fetch(url + path, { method: "POST", headers: { ...headers, "Content-Type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(fields).toString(), redirect: "manual" });

  afterAll(() => close(server));
  useTestDatabase(dialect, (o) => ((ds = o.ds), (db = o.db)), [...testEntities, ...waitEntities]);
  beforeAll(async () => ({ url, server } = await serve({ dataSource: ds, auth: { token: TOKEN } })));

  it("refuses to be made without an authentication choice", () => {
    expect(() => ormqDashboard({ dataSource: ds } as DashboardOptions)).toThrow(InvalidOptionError);
    expect(() => ormqDashboard({ dataSource: ds, auth: { token: "short" } })).toThrow(/at least 16 characters/);
  });

  it("asks for the token: a login form sets a cookie; a wrong token or none gets nothing", async () => {
    expect((await get("/", {})).headers.get("location")).toBe("/login");
    expect((await post("/queues/default/pause", { _csrf: "x" }, {})).status).toBe(401);
    expect((await get("/", { Authorization: "Bearer wrong-token-0123456789" })).status).toBe(303);
    expect((await post("/login", { token: "nope" }, {})).status).toBe(401);
    const login = await post("/login", { token: TOKEN }, {});
    expect(login.status).toBe(303);
    const cookie = login.headers.get("set-cookie")!;
    expect(cookie).toMatch(/ormq_dashboard=.*HttpOnly; SameSite=Strict/);
    const page = await get("/", { Cookie: cookie.split(";")[0] });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<h1>Overview</h1>");
  });

  it("serves every page with security headers and no inline script", async () => {
    const [task] = await enqueueMany([WaitedTask.create({ mode: "return", n: 4 })], { dataSource: ds });
    for (const path of ["/", "/tasks", "/tasks?type=waited_task&f.n.min=1&f.n.max=9", `/tasks/${task}`, "/workers", "/queues", "/assets/dashboard.js", "/assets/dashboard.css"]) {
      const res = await get(path);
      expect([path, res.status]).toEqual([path, 200]);
      expect(res.headers.get("content-security-policy")).toMatch(/script-src 'self'/);
      expect(res.headers.get("x-frame-options")).toBe("DENY");
      if (path.startsWith("/assets")) continue;
      const body = await res.text();
      expect(body).not.toMatch(/<script>(?!<\/script>)/); // only <script src=…>, never a script body
      expect(body).not.toMatch(/ on[a-z]+=/i);
    }
    // The overview shows what the classes declare beside what was set at run time.
    expect(await (await get("/")).text()).toMatch(/Declared by task classes.*limited_account<\/a><\/td><td><\/td><td>2 running per accountId</s);
    const filtered = await (await get("/tasks?type=waited_task&f.n.min=4&f.n.max=4")).text();
    expect(filtered).toContain(`/tasks/${task}"`);
    expect((await (await get("/tasks?type=waited_task&f.n.min=5")).text())).not.toContain(`/tasks/${task}"`);
  });

  it("renders hostile values from the database as text", async () => {
    const [id] = await enqueueMany([SendEmail.create({ to: HOSTILE })], { dataSource: ds });
    await cancelTask(id, { dataSource: ds, reason: HOSTILE });
    for (const path of [`/tasks/${id}`, "/tasks?type=send_email", `/tasks?type=send_email&f.to=${encodeURIComponent(HOSTILE)}`]) {
      const body = await (await get(path)).text();
      expect(body).toContain("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(1)&gt;");
      expect(body).not.toContain("<script>alert(1)");
      expect(body).not.toContain("<img src=x");
    }
  });

  it("shows a failed attempt's hostile error and stack as text, and the worker that ran it", async () => {
    // First in line (earlier tests leave tasks pending): the one attempt below is its.
    const [id] = await enqueueMany([WaitedTask.create({ mode: "hostile", priority: 1_000 })], { dataSource: ds });
    await processN(WaitedTask, 1, { dataSource: ds, logger: memoryLogger().logger, scheduler: false });
    const body = await (await get(`/tasks/${id}`)).text();
    expect(body).toContain("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(1)&gt;");
    expect(body).toContain("at &lt;img src=x onerror=alert(2)&gt; (hostile.js:1:1)");
    expect(body).not.toContain("<img src=x");
    expect(body).not.toContain("<script>alert");
    // The workers page lists the worker that ran it: host, pid, types, state, heartbeat, tasks held.
    const workers = await (await get("/workers")).text();
    const row = workers.split("<tr>").find((r) => r.includes(`<td>${process.pid}</td>`));
    expect(row).toBeDefined();
    expect(row).toContain(hostname());
    expect(row).toContain("WaitedTask");
    expect(row).toContain("stopped");
  });

  it("answers bad input with a 400 and a message, never a stack", async () => {
    for (const [path, message] of [
      ["/tasks/abc", /task id must be a positive 64-bit integer/],
      ["/tasks?before=zz", /page cursor/],
      ["/tasks?type=waited_task&f.nope=1", /unknown filter column "nope"/],
      ["/tasks?f.n=1", /choose a type first/],
      ["/tasks?status=bogus", /unknown status "bogus"/],
      ["/tasks?type=waited_task&f.n.min=abc", /must be a number/],
      ["/tasks?createdFrom=yesterday", /created from takes an ISO date/],
      ["/tasks/find?id=1%3Bdrop", /must be a positive 64-bit integer/],
    ] as const) {
      const res = await get(path);
      const body = await res.text();
      expect([path, res.status]).toEqual([path, 400]);
      expect(body).toMatch(message);
      expect(body).not.toMatch(/\n\s+at /);
    }
    expect((await get("/tasks/999999999")).status).toBe(404);
  });

  it("answers a NUL in a filter with a 400 naming the field, on the task pages and the retry-by-filter action", async () => {
    await enqueueMany([WaitedTask.create({ mode: "return" })], { dataSource: ds }); // a task to read: an empty table is never queried
    for (const path of ["/tasks?type=%00", "/tasks?type=a%00b&status=failed", "/tasks?queue=%00", "/tasks?type=send_email&f.to=%00"]) {
      const res = await get(path);
      const body = await res.text();
      expect([path, res.status]).toEqual([path, 400]);
      expect(body).toMatch(/^bad request: listTasks: (type|queue|SendEmail\.to)/);
    }
    const csrf = await csrfOf();
    // Refused at the confirmation already, and at the confirmed POST.
    for (const confirm of [{}, { confirm: "yes" }] as Record<string, string>[]) {
      const res = await post("/tasks/retry-failed", { _csrf: csrf, status: "failed", type: "waited\u0000task", ...confirm });
      expect([confirm, res.status]).toEqual([confirm, 400]);
      expect(await res.text()).toContain('retryFailed: type cannot hold a NUL character (\\u0000), got "waited\\u0000task"');
    }
  });

  it("acts through the admin API: retry, cancel, delete, retry by filter with confirmation, pause and resume, limits, schedules; CSRF checked", async () => {
    const ids = await enqueueMany([0, 1, 2].map((n) => WaitedTask.create({ mode: "fail", n: 100 + n })), { dataSource: ds });
    await processN(WaitedTask, 100, { dataSource: ds, logger: memoryLogger().logger, scheduler: false });
    const csrf = await csrfOf(`/tasks/${ids[1]}`);
    expect((await post(`/tasks/${ids[0]}/retry`, {})).status).toBe(403);
    expect((await post(`/tasks/${ids[0]}/retry`, { _csrf: "forged" })).status).toBe(403);
    expect(await (await post(`/tasks/${ids[0]}/retry`, { _csrf: csrf })).text()).toContain("Requeued.");
    expect((await ds.getRepository(WaitedTask).findOneByOrFail({ id: ids[0] })).status).toBe("pending");
    expect(await (await post(`/tasks/${ids[0]}/cancel`, { _csrf: csrf })).text()).toContain("Cancelled.");
    expect(await (await post(`/tasks/${ids[0]}/delete`, { _csrf: csrf })).text()).toContain("Deleted.");
    expect(await ds.getRepository(BaseTaskEntity).countBy({ id: ids[0] })).toBe(0);
    // Many tasks: a confirmation first.
    const ask = await (await post("/tasks/retry-failed", { _csrf: csrf, status: "failed", type: "waited_task", "f.n.min": "101" })).text();
    expect(ask).toContain("Retry every failed task this filter matches?");
    expect(await ds.getRepository(WaitedTask).countBy({ status: "pending" })).toBe(0);
    expect(await (await post("/tasks/retry-failed", { _csrf: csrf, status: "failed", type: "waited_task", "f.n.min": "101", confirm: "yes" })).text()).toContain("Requeued 2;");
    expect(await (await post("/queues/mail/pause", { _csrf: csrf })).text()).toContain("Queue mail paused");
    expect(await listControls({ dataSource: ds })).toEqual([expect.objectContaining({ scope: "queue", name: "mail", paused: true })]);
    await post("/queues/mail/resume", { _csrf: csrf });
    expect(await (await post("/queues/mail/limits", { _csrf: csrf, concurrency: "3" })).text()).toContain("concurrency 3");
    expect((await post("/queues/mail/limits", { _csrf: csrf, concurrency: "many" })).status).toBe(400);
    await createSchedule({ dataSource: ds, name: "nightly", type: WaitedTask, cron: "0 2 * * *", data: { mode: "return" } });
    expect(await (await post("/schedules/nightly/pause", { _csrf: csrf })).text()).toContain("Schedule nightly paused");
    expect((await listSchedules({ dataSource: ds, name: "nightly" }))[0].paused).toBe(true);
    await post("/schedules/nightly/resume", { _csrf: csrf });
    expect((await listSchedules({ dataSource: ds, name: "nightly" }))[0].paused).toBe(false);
    // Search by id goes to the task's page.
    expect((await get(`/tasks/find?id=${ids[1]}`)).headers.get("location")).toBe(`/tasks/${ids[1]}`);
  });

  it("a task's page shows its workflow (parent, children, dependencies, dependents, counts below) and cancels the whole workflow after a confirmation", async () => {
    const [root] = await enqueueMany([WaitedTask.create({ mode: "return", n: 300 })], { dataSource: ds });
    const child = await WaitedTask.create({ mode: "return", n: 301, parentId: root }).save();
    const dependent = await WaitedTask.create({ mode: "return", n: 302, dependsOn: [root, child] }).save();
    const rootPage = await (await get(`/tasks/${root}`)).text();
    expect(rootPage).toContain("<h2>Workflow</h2>");
    expect(rootPage).toContain("Below it: 2 task(s): 1 pending, 1 waiting.");
    expect(rootPage).toMatch(new RegExp(`<h3>Children \\(1\\)</h3>[^]*<a href="/tasks/${child.id}">${child.id}</a></td><td>waited_task</td><td>pending</td>`));
    expect(rootPage).toMatch(new RegExp(`<h3>Dependents \\(1\\)</h3>[^]*<a href="/tasks/${dependent.id}">${dependent.id}</a></td><td>waited_task</td><td>waiting</td><td>open</td>`));
    expect(await (await get(`/tasks/${child.id}`)).text()).toContain(`Parent: <a href="/tasks/${root}">${root}</a> (waited_task, pending).`);
    const csrf = await csrfOf(`/tasks/${root}`);
    expect(await (await post(`/tasks/${root}/cancel-workflow`, { _csrf: csrf })).text()).toContain(`Cancel task ${root} and everything below it in its workflow`);
    expect(await ds.getRepository(WaitedTask).countBy({ n: In([300, 301, 302]), status: "cancelled" })).toBe(0);
    expect(await (await post(`/tasks/${root}/cancel-workflow`, { _csrf: csrf, confirm: "yes" })).text()).toContain("3 of its workflow&#39;s 3 tasks cancelled");
    expect(await ds.getRepository(WaitedTask).countBy({ n: In([300, 301, 302]), status: "cancelled" })).toBe(3);
  });

  it("acts on selected tasks after a confirmation; sets a rate limit; signs out", async () => {
    const ids = await enqueueMany([0, 1].map((n) => WaitedTask.create({ mode: "fail", n: 200 + n })), { dataSource: ds });
    await processN(WaitedTask, 100, { dataSource: ds, logger: memoryLogger().logger, scheduler: false });
    const listing = await (await get("/tasks?type=waited_task&f.n.min=200")).text();
    for (const id of ids) expect(listing).toContain(`name="ids" value="${id}" form="bulk"`);
    const csrf = await csrfOf(`/tasks/${ids[0]}`);
    const body = new URLSearchParams([["_csrf", csrf], ["act", "retry"], ["ids", ids[0]], ["ids", ids[1]]]).toString();
    const headers = { ...auth, "Content-Type": "application/x-www-form-urlencoded" };
    const ask = await (await fetch(`${url}/tasks/bulk`, { method: "POST", headers, body })).text();
    expect(ask).toContain(`Retry these 2 tasks (${ids[0]}, ${ids[1]})?`);
    expect(await ds.getRepository(WaitedTask).countBy({ n: 200, status: "failed" })).toBe(1);
    expect(await (await post("/tasks/bulk", { _csrf: csrf, act: "retry", idList: ids.join(","), confirm: "yes" })).text()).toContain("retry: requeued 2.");
    // Cancel them all (pending now), then delete them all (finished now).
    expect(await (await post("/tasks/bulk", { _csrf: csrf, act: "cancel", idList: ids.join(","), confirm: "yes" })).text()).toContain("cancel:");
    expect(await ds.getRepository(WaitedTask).countBy({ n: In([200, 201]), status: "cancelled" })).toBe(2);
    expect(await (await post("/tasks/bulk", { _csrf: csrf, act: "delete", idList: ids.join(","), confirm: "yes" })).text()).toContain("delete:");
    expect(await ds.getRepository(WaitedTask).countBy({ n: In([200, 201]) })).toBe(0);
    expect((await post("/tasks/bulk", { _csrf: csrf, act: "explode", idList: ids.join(",") })).status).toBe(400);
    expect((await post("/tasks/bulk", { _csrf: csrf, act: "cancel", idList: "1,x" })).status).toBe(400);
    expect(await (await post("/queues/mail/limits", { _csrf: csrf, concurrency: "", rateMax: "20", ratePer: "1s" })).text()).toContain("rate 20 per 1000 ms");
    expect(await listControls({ dataSource: ds })).toEqual(expect.arrayContaining([expect.objectContaining({ name: "mail", rate: { max: 20, perMs: 1000 } })]));
    const out = await post("/logout", { _csrf: csrf });
    expect(out.headers.get("set-cookie")).toMatch(/ormq_dashboard=; .*Max-Age=0/);
    expect((await get("/")).status).toBe(200);
    expect(await (await get("/")).text()).toContain("oldest ready waited");
  });

  it("read-only: no action is shown, and every POST is refused", async () => {
    const ro = await serve({ dataSource: ds, auth: { token: TOKEN }, readOnly: true });
    try {
      const [task] = await enqueueMany([WaitedTask.create({ mode: "return" })], { dataSource: ds });
      for (const path of ["/queues", "/tasks", `/tasks/${task}`]) {
        const page = await (await fetch(`${ro.url}${path}`, { headers: auth })).text();
        expect([path, page]).not.toEqual([path, expect.stringMatching(/method="post" action="[^"]*\/(queues|tasks|schedules)\//)]); // only "Sign out" posts
      }
      const res = await fetch(`${ro.url}/queues/mail/pause`, { method: "POST", headers: { ...auth, "Content-Type": "application/x-www-form-urlencoded" }, body: "_csrf=x" });
      expect(res.status).toBe(403);
    } finally {
      await close(ro.server);
    }
  });

  it("an auth hook decides from the request; a basePath prefixes every link", async () => {
    // Any truthy value allows (a hook may return its user object); a falsy one refuses.
    const hooked = await serve({ dataSource: ds, auth: ((req: { headers: Record<string, unknown> }) => (req.headers["x-session"] === "ok" ? { user: "ada" } : undefined)) as never, basePath: "/ormq" });
    try {
      expect((await fetch(`${hooked.url}/ormq/`)).status).toBe(401);
      const res = await fetch(`${hooked.url}/ormq/tasks`, { headers: { "x-session": "ok" } });
      expect(res.status).toBe(200);
      const body = await res.text();
      expect(body).toContain('href="/ormq/assets/dashboard.css"');
      expect(body).toContain('action="/ormq/tasks"');
    } finally {
      await close(hooked.server);
    }
  });

  it("a hook that names the caller's session binds CSRF tokens to that session", async () => {
    const hooked = await serve({ dataSource: ds, auth: (req) => (typeof req.headers["x-session"] === "string" ? req.headers["x-session"] : null) });
    const as = (session: string) => ({ "x-session": session, "Content-Type": "application/x-www-form-urlencoded" });
    try {
      const page = await (await fetch(`${hooked.url}/queues`, { headers: as("alice") })).text();
      const alices = /name="_csrf" value="([^"]+)"/.exec(page)![1];
      const pause = (session: string, csrf: string) =>
        fetch(`${hooked.url}/queues/hooked/pause`, { method: "POST", headers: as(session), body: new URLSearchParams({ _csrf: csrf }).toString(), redirect: "manual" });
      expect((await pause("mallory", alices)).status).toBe(403);
      expect((await pause("alice", alices)).status).not.toBe(403);
      expect((await listControls({ dataSource: ds })).find((c) => c.scope === "queue" && c.name === "hooked")).toMatchObject({ paused: true });
    } finally {
      await close(hooked.server);
    }
  });

  it('auth: "none" answers callers on this machine only', async () => {
    expect(["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"].every(isLoopback)).toBe(true);
    expect(["192.0.2.2", "::ffff:10.0.0.1", "fd00::2", "", undefined].some(isLoopback)).toBe(false);
    const open = await serve({ dataSource: ds, auth: "none" }, "0.0.0.0");
    const port = (open.server.address() as AddressInfo).port;
    try {
      expect((await fetch(`http://127.0.0.1:${port}/tasks`)).status).toBe(200);
      // Through a proxy on this machine, every caller would look local: a forwarded request is refused.
      expect((await fetch(`http://127.0.0.1:${port}/tasks`, { headers: { "X-Forwarded-For": "203.0.113.9" } })).status).toBe(403);
      expect((await fetch(`http://127.0.0.1:${port}/tasks`, { headers: { Forwarded: "for=203.0.113.9" } })).status).toBe(403);
      // A caller from another address: this machine's own non-loopback address is one.
      const external = Object.values(networkInterfaces())
        .flat()
        .find((a) => a && a.family === "IPv4" && !a.internal)?.address;
      if (external === undefined) {
        console.log("no non-loopback IPv4 address here: the remote caller half is not run");
        return;
      }
      const res = await fetch(`http://${external}:${port}/tasks`);
      expect(res.status).toBe(403);
      expect(await res.text()).toMatch(/no authentication .* this machine only/);
    } finally {
      await close(open.server);
    }
  });

  it("counts finished tasks per minute for the overview's chart", async () => {
    const minutes = await countFinishedByMinute({ dataSource: ds, minutes: 60 });
    expect(minutes).toHaveLength(60);
    for (let i = 1; i < 60; i++) expect(minutes[i].minute.getTime() - minutes[i - 1].minute.getTime()).toBe(60_000);
    const finished = await ds.getRepository(BaseTaskEntity).createQueryBuilder("t").where("t.finished_at >= :since", { since: minutes[0].minute.getTime() }).getCount();
    expect(minutes.reduce((n, m) => n + m.count, 0)).toBe(finished);
    expect(finished).toBeGreaterThan(0);
    await expect(countFinishedByMinute({ dataSource: ds, minutes: 0 })).rejects.toThrow(/from 1 to 1440/);
    expect(await (await get("/")).text()).toMatch(/id="chart" data-points="\[\[/);
  });

  it("many open overviews share one stats read per refresh interval", async () => {
    let statsReads = 0;
    const logger: OrmLogger = {
      // getStats' count by queue, type and status: the overview's expensive read.
      logQuery: (q) => void (/GROUP BY .*["`]queue["`].*["`]type["`].*["`]status["`]/s.test(q) && statsReads++),
      logQueryError: () => {},
      logQuerySlow: () => {},
      logSchemaBuild: () => {},
      logMigration: () => {},
      log: () => {},
    };
    const counted = await openDataSource(db, [...testEntities, ...waitEntities], { logging: ["query"], logger }, false);
    const shared = await serve({ dataSource: counted, auth: { token: TOKEN } });
    try {
      const pages = await Promise.all(Array.from({ length: 20 }, () => fetch(`${shared.url}/`, { headers: auth })));
      expect(pages.map((p) => p.status)).toEqual(Array(20).fill(200));
      expect(statsReads).toBe(1);
    } finally {
      await close(shared.server);
      await counted.destroy();
    }
  });
});

/**
 * `text` percent-encoded byte by byte as UTF-8, a lone surrogate as the three bytes UTF-8 would
 * give it: what a client can send (the server decodes such bytes as U+FFFD).
 */
function percentEncoded(text: string): string {
  let out = "";
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    const bytes =
      cp < 0x80
        ? [cp]
        : cp < 0x800
          ? [0xc0 | (cp >> 6), 0x80 | (cp & 63)]
          : cp < 0x10000
            ? [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)]
            : [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)];
    out += bytes.map((b) => `%${b.toString(16).padStart(2, "0")}`).join("");
  }
  return out;
}

/** One request with exactly these headers (fetch will not send another Host), and its answer. */
function send(port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, headers, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode!, text }));
    });
    req.on("error", reject).end(body);
  });
}

describe.each(WITH_MARIADB)("dashboard input on %s", (dialect) => {
  let ds: DataSource;
  useTestDatabase(dialect, (o) => (ds = o.ds), [...testEntities, ...waitEntities]);

  beforeAll(async () => {
    await enqueueMany([0, 1, 2].map((n) => WaitedTask.create({ mode: "fail", n })), { dataSource: ds });
    await enqueueMany([SendEmail.create({ to: "a@example.com" })], { dataSource: ds });
    await processN(WaitedTask, 3, { dataSource: ds, logger: memoryLogger().logger, scheduler: false });
    await createSchedule({ dataSource: ds, name: "nightly", type: WaitedTask, cron: "0 2 * * *", data: { mode: "return" } });
  });

  it("any text in a filter, a form field or a path gives a 200 or a 400 page, never a 500", async () => {
    const { url, server } = await serve({ dataSource: ds, auth: { token: TOKEN } });
    const headers = { Authorization: `Bearer ${TOKEN}` };
    try {
      const csrf = /name="_csrf" value="([^"]+)"/.exec(await (await fetch(`${url}/queues`, { headers })).text())![1];
      // Values as a client sends them: any string (NULs and lone surrogates included), any bytes.
      const value = fc.oneof(
        fc.string({ unit: "binary", maxLength: 20 }).map(percentEncoded),
        fc.string({ unit: fc.constantFrom("\u0000", "\ud800", "\udfff", "\ud83d\ude00", "a", "_", "%", "&", "é"), maxLength: 6 }).map(percentEncoded),
        fc.string({ unit: "binary-ascii", maxLength: 20 }).map(percentEncoded),
        fc.uint8Array({ maxLength: 12 }).map((bytes) => [...bytes].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("")),
        fc.constantFrom("%00", "a%00b", "%ED%A0%80", "%FF", "waited_task", "send_email", "failed", "1", "2026-11-30", "9999999999999999999999", ""),
      );
      const name = fc.oneof({ arbitrary: fc.constantFrom("type", "queue", "f.mode", "f.to"), weight: 3 }, fc.constantFrom("type", "queue", "status", "createdFrom", "createdBefore", "before", "id", "f.n", "f.n.min", "f.n.max", "f.mode", "f.to", "act", "ids", "idList", "concurrency", "rateMax", "ratePer"), value);
      const type = fc.constantFrom(undefined, "waited_task", "send_email");
      // Each request, and the statuses it may answer: 200 or 400; 303 for the find form's redirect;
      // 404 where a path names a task that is not there, or does not match a route at all.
      const form = (fields: [string, string][]) => fields.map(([k, v]) => `${k}=${v}`).join("&");
      const requests = fc.oneof(
        fc.record({ path: fc.constantFrom("/", "/tasks", "/tasks", "/tasks", "/tasks/find", "/workers", "/queues"), name, value, type }).map(({ path, name, value, type }) => ({
          method: "GET",
          path: `${path}?${form([...(type ? [["type", type] as [string, string]] : []), [name, value]])}`,
          body: undefined,
          allowed: path === "/tasks/find" ? [303, 400] : [200, 400],
        })),
        fc.record({ name, value, type, confirm: fc.boolean() }).map(({ name, value, type, confirm }) => ({
          method: "POST",
          path: "/tasks/retry-failed",
          body: form([["_csrf", csrf], ["status", "failed"], ...(type ? [["type", type] as [string, string]] : []), [name, value], ...(confirm ? [["confirm", "yes"] as [string, string]] : [])]),
          allowed: [200, 400],
        })),
        fc.record({ act: fc.oneof(fc.constantFrom("retry", "cancel", "delete"), value), ids: value, confirm: fc.boolean() }).map(({ act, ids, confirm }) => ({
          method: "POST",
          path: "/tasks/bulk",
          body: form([["_csrf", csrf], ["act", act], ["ids", ids], ["idList", ids], ...(confirm ? [["confirm", "yes"] as [string, string]] : [])]),
          allowed: [200, 400],
        })),
        fc.record({ route: fc.constantFrom("/tasks/:", "/tasks/:/retry", "/tasks/:/cancel", "/tasks/:/delete", "/queues/:/pause", "/queues/:/resume", "/queues/:/limits", "/schedules/:/pause", "/schedules/:/resume"), value }).map(({ route, value }) => ({
          method: route === "/tasks/:" ? "GET" : "POST",
          path: route.replace(":", value),
          body: route === "/tasks/:" ? undefined : form([["_csrf", csrf], ["concurrency", "2"]]),
          allowed: [200, 400, 404],
        })),
        fc.record({ field: fc.constantFrom("concurrency", "rateMax", "ratePer"), value }).map(({ field, value }) => ({
          method: "POST",
          path: "/queues/mail/limits",
          body: form([["_csrf", csrf], ["rateMax", "5"], [field, value]]),
          allowed: [200, 400],
        })),
      );
      await fc.assert(
        fc.asyncProperty(requests, async ({ method, path, body, allowed }) => {
          const res = await fetch(url + path, { method, headers: { ...headers, "Content-Type": "application/x-www-form-urlencoded" }, body, redirect: "manual" });
          const text = await res.text();
          expect([method, path, body, res.status, allowed.includes(res.status)]).toEqual([method, path, body, res.status, true]);
          // A refusal says why, without a stack (a task's page shows its errors' stacks: not checked).
          if (res.status === 400 && !text.startsWith("<!doctype html>")) expect(text).toMatch(/^bad request: /);
          if (res.status === 400) expect(text).not.toMatch(/\n\s+at /);
        }),
        { numRuns: 400 },
      );
    } finally {
      await close(server);
    }
  });

  it("a loopback Host is localhost, 127.0.0.0/8 or [::1], with or without a port", () => {
    expect(["localhost", "LOCALHOST:8080", "127.0.0.1", "127.0.0.1:80", "127.9.8.7:65535", "[::1]", "[::1]:8080"].filter((h) => !isLoopbackHost(h))).toEqual([]);
    const others = ["attacker.example", "attacker.example:8080", "localhost.attacker.example", "app.localhost", "127.0.0.1.nip.io", "127.0.0.256", "10.0.0.1", "[::2]", "[::1", "localhost:", "localhost:port", "", undefined];
    expect(others.filter((h) => isLoopbackHost(h))).toEqual([]);
  });

  it('auth: "none" answers only requests addressed to a loopback name (no DNS rebinding)', async () => {
    const open = await serve({ dataSource: ds, auth: "none" });
    const port = (open.server.address() as AddressInfo).port;
    const page = (host: string) => send(port, "GET", "/tasks", { Host: host });
    try {
      for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, "localhost"]) expect([host, (await page(host)).status]).toEqual([host, 200]);
      // A page of attacker.example whose name now points at 127.0.0.1: its requests say so in Host.
      const refused = await page("attacker.example");
      expect(refused.status).toBe(403);
      expect(refused.text).toMatch(/no authentication .*Host "attacker\.example".*localhost/s);
      expect(refused.text).not.toContain("_csrf");
      for (const path of ["/", "/queues", "/workers", "/tasks/1", "/assets/dashboard.js"]) {
        expect([path, (await send(port, "GET", path, { Host: `attacker.example:${port}` })).status]).toEqual([path, 403]);
      }
      // Its actions too, even with a token it got elsewhere.
      const csrf = /name="_csrf" value="([^"]+)"/.exec((await page(`localhost:${port}`)).text)![1];
      const pause = (host: string) => send(port, "POST", "/queues/rebound/pause", { Host: host, "Content-Type": "application/x-www-form-urlencoded" }, `_csrf=${encodeURIComponent(csrf)}`);
      expect((await pause("attacker.example")).status).toBe(403);
      expect((await listControls({ dataSource: ds })).some((c) => c.name === "rebound")).toBe(false);
      expect((await pause(`127.0.0.1:${port}`)).status).toBe(200);
      expect((await listControls({ dataSource: ds })).find((c) => c.name === "rebound")).toMatchObject({ paused: true });
      // No Host at all (HTTP/1.0 allows it): refused the same way.
      const answer = await new Promise<string>((resolve, reject) => {
        let text = "";
        const socket = connect(port, "127.0.0.1", () => socket.end("GET /tasks HTTP/1.0\r\n\r\n"));
        socket.setEncoding("utf8").on("data", (d: string) => (text += d)).on("end", () => resolve(text)).on("error", reject);
      });
      expect(answer).toMatch(/^HTTP\/1\.1 403 .*no Host header/s);
    } finally {
      await close(open.server);
    }
  });
});
