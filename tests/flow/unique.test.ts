import type { DataSource } from "typeorm";
import { BaseTaskEntity, enqueueMany, processN, TaskValidationError, UniqueTaskError } from "../../src";
import { retryFailed, retryTask } from "../../src/admin";
import { DebounceAccount, HourlyAccount, StrictAccount, SyncAccount } from "../fixtures/flow";
import { testEntities } from "../fixtures/tasks";
import { WITH_MARIADB, memoryLogger, useTestDatabase } from "../support/db";

describe.each(WITH_MARIADB)("unique tasks on %s", (dialect) => {
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

  it("replace: a running duplicate is left alone and the new one is skipped", async () => {
    const running = await DebounceAccount.create({ accountId: "run1", note: "running" }).save();
    // As a worker's claim leaves it (the guard's rule depends on the status, not on who holds it).
    await ds.getRepository(BaseTaskEntity).update({ id: running.id }, { status: "running", lockedBy: "elsewhere" });
    const second = await DebounceAccount.create({ accountId: "run1", note: "new" }).save();
    expect({ id: second.id, deduplicated: second.deduplicated, replaced: second.replaced }).toEqual({ id: running.id, deduplicated: true, replaced: false });
    expect(await ds.getRepository(DebounceAccount).findOneByOrFail({ id: running.id })).toMatchObject({ note: "running", status: "running" });
    expect(await ds.getRepository(DebounceAccount).countBy({ accountId: "run1" })).toBe(1);
  });

  it("enqueueMany: replace updates the standing task; error rolls the whole call back", async () => {
    const standing = await DebounceAccount.create({ accountId: "mr1", note: "old" }).save();
    const tasks = [DebounceAccount.create({ accountId: "mr1", note: "newer" }), DebounceAccount.create({ accountId: "mr2", note: "fresh" })];
    const ids = await enqueueMany(tasks, { dataSource: ds });
    expect(ids[0]).toBe(standing.id);
    expect(tasks.map((t) => [t.deduplicated, t.replaced])).toEqual([
      [true, true],
      [false, false],
    ]);
    expect((await ds.getRepository(DebounceAccount).findOneByOrFail({ id: standing.id })).note).toBe("newer");

    await StrictAccount.create({ accountId: "me1" }).save();
    const err = await enqueueMany([StrictAccount.create({ accountId: "me2" }), StrictAccount.create({ accountId: "me1" })], { dataSource: ds }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UniqueTaskError);
    // All or nothing: the task before the duplicate was not kept either.
    expect(await ds.getRepository(StrictAccount).countBy({ accountId: "me2" })).toBe(0);
  });

  it("retryFailed goes on past a task whose key another unfinished task holds, and counts it", async () => {
    // On a queue of their own: earlier tests leave failed tasks of this class.
    const ids = await enqueueMany(["rf1", "rf2", "rf3"].map((accountId) => SyncAccount.create({ accountId }).onQueue("retry-failed")), { dataSource: ds });
    await ds.getRepository(BaseTaskEntity).update(ids, { status: "failed" });
    const holder = await SyncAccount.create({ accountId: "rf2" }).save();
    expect(holder.deduplicated).toBe(false);
    expect(await retryFailed({ dataSource: ds, type: "sync_account", queue: "retry-failed" })).toEqual({ requeued: 2, duplicates: 1 });
    const statuses = await ds.getRepository(SyncAccount).find({ where: ids.map((id) => ({ id })), order: { id: "ASC" } });
    expect(statuses.map((t) => t.status)).toEqual(["pending", "failed", "pending"]);
  });
});
