import type { DataSource } from "typeorm";
import { enqueueMany, processN, retryTask, TaskValidationError, UniqueTaskError } from "../../src";
import { DebounceAccount, HourlyAccount, StrictAccount, SyncAccount } from "../fixtures/flow";
import { testEntities } from "../fixtures/tasks";
import { DIALECTS, memoryLogger, useTestDatabase } from "../support/db";

describe.each(DIALECTS)("unique tasks on %s", (dialect) => {
  let ds: DataSource;
  useTestDatabase(dialect, (o) => (ds = o.ds), testEntities);

  it("skip: a duplicate is not written, and the instance learns the standing task's id", async () => {
    const first = await SyncAccount.create({ accountId: "a1", note: "first" }).save();
    expect(first.deduplicated).toBe(false);
    const second = await SyncAccount.create({ accountId: "a1", note: "second" }).save();
    expect(second.deduplicated).toBe(true);
    expect(second.id).toBe(first.id);
    const rows = await ds.getRepository(SyncAccount).findBy({ accountId: "a1" });
    expect(rows.map((r) => [r.id, r.note])).toEqual([[first.id, "first"]]);
    // Another key is its own task.
    const other = await SyncAccount.create({ accountId: "a2" }).save();
    expect(other.deduplicated).toBe(false);
    expect(other.id).not.toBe(first.id);
  });

  it("skip inside a transaction that goes on: the transaction is not aborted", async () => {
    const standing = await SyncAccount.create({ accountId: "tx1" }).save();
    const seen = await ds.transaction(async (m) => {
      const dup = await m.save(SyncAccount.create({ accountId: "tx1", note: "dup" }));
      const fresh = await m.save(SyncAccount.create({ accountId: "tx2" }));
      // A statement after the skipped insert still runs: the transaction is usable.
      const n = await m.getRepository(SyncAccount).countBy({ accountId: "tx2" });
      return { dup, fresh, n };
    });
    expect(seen.dup.id).toBe(standing.id);
    expect(seen.dup.deduplicated).toBe(true);
    expect(seen.fresh.deduplicated).toBe(false);
    expect(seen.n).toBe(1);
  });

  it("a finished task frees its key; a finished task within the window holds it", async () => {
    const first = await SyncAccount.create({ accountId: "done1" }).save();
    const hourly = await HourlyAccount.create({ accountId: "h1" }).save();
    const pending = await ds.getRepository(SyncAccount).countBy({ status: "pending" });
    await processN(SyncAccount, pending, { dataSource: ds, logger: memoryLogger().logger, pollIntervalMs: 20 });
    await expect(ds.getRepository(SyncAccount).findOneByOrFail({ id: first.id })).resolves.toMatchObject({ status: "succeeded" });
    await processN(HourlyAccount, 1, { dataSource: ds, logger: memoryLogger().logger, pollIntervalMs: 20 });
    const again = await SyncAccount.create({ accountId: "done1" }).save();
    expect(again.deduplicated).toBe(false);
    expect(again.id).not.toBe(first.id);
    const hourlyAgain = await HourlyAccount.create({ accountId: "h1" }).save();
    expect(hourlyAgain.deduplicated).toBe(true);
    expect(hourlyAgain.id).toBe(hourly.id);
  });

  it("replace: the pending task takes the duplicate's data and runAt", async () => {
    const first = await DebounceAccount.create({ accountId: "d1", note: "old" }).delay(60_000).save();
    const second = await DebounceAccount.create({ accountId: "d1", note: "new" }).save();
    expect(second.id).toBe(first.id);
    expect(second.replaced).toBe(true);
    const row = await ds.getRepository(DebounceAccount).findOneByOrFail({ id: first.id });
    expect(row.note).toBe("new");
    expect(row.runAt.getTime()).toBeLessThan(first.runAt.getTime() - 30_000);
    // queue is part of this class's key: another queue is another task.
    const elsewhere = await DebounceAccount.create({ accountId: "d1", note: "x" }).onQueue("other").save();
    expect(elsewhere.deduplicated).toBe(false);
  });

  it("error: UniqueTaskError naming the key; nothing written; the transaction goes on", async () => {
    const first = await StrictAccount.create({ accountId: "s1" }).save();
    await ds.transaction(async (m) => {
      await expect(m.save(StrictAccount.create({ accountId: "s1" }))).rejects.toThrow(UniqueTaskError);
      await expect(m.getRepository(StrictAccount).countBy({ accountId: "s1" })).resolves.toBe(1);
    });
    const err = await StrictAccount.create({ accountId: "s1" }).save().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UniqueTaskError);
    expect((err as UniqueTaskError).standingId).toBe(first.id);
    expect((err as Error).message).toContain('"accountId":"s1"');
  });

  it("a null key column is refused at enqueue", async () => {
    await expect(SyncAccount.create({}).save()).rejects.toThrow(TaskValidationError);
    await expect(enqueueMany([SyncAccount.create({ accountId: null as unknown as string })], { dataSource: ds })).rejects.toThrow(/accountId/);
  });

  it("enqueueMany honours the rules and marks which were skipped", async () => {
    const standing = await SyncAccount.create({ accountId: "m1" }).save();
    const tasks = ["m1", "m2", "m2", "m3"].map((accountId) => SyncAccount.create({ accountId }));
    const ids = await enqueueMany(tasks, { dataSource: ds });
    expect(ids[0]).toBe(standing.id);
    expect(ids[1]).toBe(ids[2]);
    expect(tasks.map((t) => t.deduplicated)).toEqual([true, false, true, false]);
    expect(await ds.getRepository(SyncAccount).countBy({ accountId: "m2" })).toBe(1);
  });

  it("retryTask onto a key another unfinished task holds reports duplicate", async () => {
    const failed = await SyncAccount.create({ accountId: "r1" }).save();
    await ds.getRepository(SyncAccount).update({ id: failed.id }, { status: "failed" });
    const holder = await SyncAccount.create({ accountId: "r1" }).save();
    expect(holder.deduplicated).toBe(false);
    await expect(retryTask(failed.id, { dataSource: ds })).resolves.toMatchObject({ outcome: "duplicate", id: failed.id, standingId: holder.id });
  });
});
