import type { DataSource } from "typeorm";
import { enqueueMany, InvalidOptionError } from "../src";
import { listTaskPage } from "../src/admin";
import { LIST_PAGE_SCAN } from "../src/admin/list";
import { RecordRun, SendEmail, testEntities } from "./fixtures/tasks";
import { WITH_MARIADB, useTestDatabase } from "./support/db";

/** `listTaskPage`: keyset pages, newest first, each reading a bounded range of ids. */
describe.each(WITH_MARIADB)("task list pages on %s", (dialect) => {
  let ds: DataSource;
  useTestDatabase(dialect, (opened) => ({ ds } = opened), testEntities);
  beforeEach(async () => {
    await ds.query(`DELETE FROM ormq_tasks`);
  });

  it("refuses a bad filter whether or not a task is there to match (an empty table, a cursor below every id)", async () => {
    const bad = { dataSource: ds, type: "send_email", fields: { to: { min: 1, max: 2, step: 3 } as never } };
    await expect(listTaskPage(bad)).rejects.toThrow(InvalidOptionError); // the table is empty
    await enqueueMany([RecordRun.create({ label: "one" })], { dataSource: ds });
    await expect(listTaskPage({ ...bad, before: 1 })).rejects.toThrow(/a range is \{ min\?, max\? \}/);
  });

  it("pages through every task once, newest first, and ends with no cursor", async () => {
    const ids = await enqueueMany(Array.from({ length: 120 }, (_, i) => RecordRun.create({ label: `r${i}` })), { dataSource: ds });
    const seen: string[] = [];
    let before: string | undefined;
    const sizes: number[] = [];
    for (;;) {
      const page = await listTaskPage({ dataSource: ds, limit: 50, before });
      sizes.push(page.tasks.length);
      seen.push(...page.tasks.map((t) => t.id));
      if (page.next === null) break;
      before = page.next;
    }
    expect(sizes).toEqual([50, 50, 20]);
    expect(seen).toEqual([...ids].reverse());
  });

  it("a filter that matches little reads one bounded range per page, and returns a cursor for the rest", async () => {
    const [rare] = await ds.getRepository(SendEmail).save([SendEmail.create({ to: "rare@example.com" }).onQueue("rare")]);
    // A task far above it: the ids between are more than three pages' ranges.
    const far = BigInt(rare.id) + BigInt(LIST_PAGE_SCAN) * 3n + 10n;
    await ds.query(
      `INSERT INTO ormq_tasks (id, type, queue, status, priority, attempts, max_attempts, run_at, created_at, updated_at, errors)
       VALUES (${far}, 'record_run', 'records', 'pending', 0, 0, 5, 0, 0, 0, '[]')`,
    );
    const pages: { ids: string[]; next: string | null }[] = [];
    let before: string | undefined;
    do {
      const page = await listTaskPage({ dataSource: ds, queue: "rare", before });
      pages.push({ ids: page.tasks.map((t) => t.id), next: page.next });
      before = page.next ?? undefined;
    } while (before !== undefined && pages.length < 10);
    // Empty pages with a cursor until the range that holds it; then no cursor.
    expect(pages.length).toBe(4);
    expect(pages.slice(0, 3).every((p) => p.ids.length === 0 && p.next !== null)).toBe(true);
    expect(pages[3]).toEqual({ ids: [rare.id], next: null });
  });

  it("refuses a cursor that is not a task id", async () => {
    await expect(listTaskPage({ dataSource: ds, before: "12; DROP TABLE ormq_tasks" })).rejects.toThrow(/listTaskPage\(before\)/);
  });
});
