import type { DataSource } from "typeorm";
import { createDialect, type TaskRow } from "../src/dialect";
import { ClaimWatermark, HEAD_CLAIM_EVERY_MS, lastInClaimOrder } from "../src/dialect/watermark";
import { RecordRun, testEntities } from "./fixtures/tasks";
import { memoryLogger, useTestDatabase } from "./support/db";

const row = (id: number, priority: number, runAt: number): TaskRow => ({ id: String(id), priority, run_at: String(runAt) });

describe("claim watermark (pure)", () => {
  it("takes the last row in claim order", () => {
    expect(lastInClaimOrder([row(5, 1, 100), row(3, 0, 50), row(4, 0, 50), row(9, 0, 40)])).toEqual({ priority: 0, runAt: "50", id: "4" });
    expect(lastInClaimOrder([])).toBeNull();
  });

  it("claims from the head first, after a short resumed claim, and every interval", () => {
    let now = 0;
    const w = new ClaimWatermark(() => now);
    expect(w.next()).toBeNull();
    w.claimed(null, [row(1, 0, 10), row(2, 0, 10)], 2);
    expect(w.next()).toEqual({ priority: 0, runAt: "10", id: "2" });
    w.claimed(w.next(), [row(3, 0, 10), row(4, 0, 11)], 2);
    expect(w.next()).toEqual({ priority: 0, runAt: "11", id: "4" });
    now += HEAD_CLAIM_EVERY_MS;
    expect(w.next()).toBeNull(); // the interval is up
    w.claimed(null, [row(5, 0, 12), row(6, 0, 12)], 2);
    w.claimed(w.next(), [row(7, 0, 12)], 2); // short: the rest may be behind
    expect(w.next()).toBeNull();
  });
});

describe("claim watermark on postgres", () => {
  let ds: DataSource;
  useTestDatabase("postgres", (opened) => ({ ds } = opened), testEntities);

  it("still finds tasks that sort before the watermark: an earlier due time, a higher priority", async () => {
    const tasks = await ds.getRepository(RecordRun).save(Array.from({ length: 12 }, (_, i) => RecordRun.create({ label: `a${i}` })));
    const dialect = createDialect(ds, "watermark-test", memoryLogger().logger);
    try {
      const request = { types: ["record_run"], queues: null, limit: 3, leaseMs: 60_000 };
      const claimed: string[] = (await dialect.claim(request)).map((r) => String(r.id));
      expect(claimed).toEqual(tasks.slice(0, 3).map((t) => t.id));
      // Behind the watermark: due earlier than anything claimed (as a task handed back keeps its
      // old run_at), and a higher priority.
      const early = await ds.getRepository(RecordRun).save(RecordRun.create({ label: "early" }).runAtTime(new Date(Date.now() - 3_600_000)));
      const urgent = await ds.getRepository(RecordRun).save(RecordRun.create({ label: "urgent" }).withPriority(5));
      for (;;) {
        const rows = await dialect.claim(request);
        if (rows.length === 0) break;
        claimed.push(...rows.map((r) => String(r.id)));
      }
      expect(claimed).toEqual(expect.arrayContaining([early.id, urgent.id, ...tasks.map((t) => t.id)]));
      expect(claimed).toHaveLength(14);
    } finally {
      await dialect.close();
    }
  });
});
