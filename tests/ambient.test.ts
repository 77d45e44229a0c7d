/**
 * Ambient transactions: an enqueue inside a transaction held in async context
 * (typeorm-transactional's runInTransaction / @Transactional) joins it, as save() through the
 * transaction's manager does: the tasks, their edges and their wake-up commit or roll back with
 * the application's own writes.
 */
import { Column, Entity, PrimaryGeneratedColumn, type DataSource } from "typeorm";
import { addTransactionalDataSource, initializeTransactionalContext, runInTransaction, StorageDriver } from "typeorm-transactional";
import { BaseTaskEntity, enqueueBatch, enqueueMany, processN } from "../src";
import { RecordRun, RunLog, testEntities } from "./fixtures/tasks";
import { memoryLogger, useTestDatabase, WITH_MARIADB } from "./support/db";

@Entity("ambient_orders")
class Order {
  @PrimaryGeneratedColumn()
  id!: number;
  @Column({ type: "varchar", length: 32 })
  label!: string;
}

initializeTransactionalContext({ storageDriver: StorageDriver.AUTO });

describe.each(WITH_MARIADB)("ambient transactions (typeorm-transactional) on %s", (dialect) => {
  let ds: DataSource;
  useTestDatabase(
    dialect,
    (opened) => {
      ds = opened.ds;
      addTransactionalDataSource({ name: `ambient-${dialect}`, dataSource: ds });
    },
    [...testEntities, Order],
  );
  const count = async () => [await ds.getRepository(Order).count(), await ds.getRepository(BaseTaskEntity).count()];

  beforeEach(async () => {
    await ds.getRepository(BaseTaskEntity).createQueryBuilder().delete().execute();
    await ds.getRepository(Order).clear();
    await ds.getRepository(RunLog).clear();
  });

  const failure = new Error("the request failed");
  const rolledBack = (work: () => Promise<unknown>) =>
    runInTransaction(
      async () => {
        await work();
        throw failure;
      },
      { connectionName: `ambient-${dialect}` },
    );

  it("save() and enqueueMany() in runInTransaction commit with the application's rows, and roll back with them", async () => {
    await runInTransaction(
      async () => {
        await ds.getRepository(Order).save({ label: "kept" });
        await RecordRun.create({ label: "by save" }).save();
        await enqueueMany([RecordRun.create({ label: "by enqueueMany" })], { dataSource: ds });
        // Inside, the transaction sees its own rows; outside it, nothing yet.
        expect(await ds.getRepository(BaseTaskEntity).count()).toBe(2);
      },
      { connectionName: `ambient-${dialect}` },
    );
    expect(await count()).toEqual([1, 2]);

    await expect(
      rolledBack(async () => {
        await ds.getRepository(Order).save({ label: "gone" });
        await RecordRun.create({ label: "gone by save" }).save();
        await enqueueMany([RecordRun.create({ label: "gone by enqueueMany" })], { dataSource: ds });
      }),
    ).rejects.toBe(failure);
    expect(await count()).toEqual([1, 2]);
    expect(await processN(RecordRun, 10, { dataSource: ds, logger: memoryLogger().logger })).toMatchObject({ succeeded: 2 });
  });

  it("a workflow enqueued in it (dependsOn, a batch) has its edges written at its commit, and none after a rollback", async () => {
    await runInTransaction(
      async () => {
        const first = await RecordRun.create({ label: "first" }).save();
        await RecordRun.create({ label: "second", dependsOn: [first] }).save();
        await enqueueBatch([RecordRun.create({ label: "in batch" })], { onComplete: RecordRun.create({ label: "callback" }), dataSource: ds });
      },
      { connectionName: `ambient-${dialect}` },
    );
    const statuses = await ds.getRepository(RecordRun).find({ order: { id: "ASC" } });
    expect(statuses.map((t) => [t.label, t.status])).toEqual([
      ["first", "pending"],
      ["second", "waiting"],
      ["in batch", "pending"],
      ["callback", "waiting"],
    ]);
    expect(Number((await ds.query("SELECT COUNT(*) AS n FROM ormq_task_dependencies"))[0].n)).toBe(2);
    await processN(RecordRun, 10, { dataSource: ds, logger: memoryLogger().logger });
    const ranAt = new Map((await ds.getRepository(RunLog).find({ order: { id: "ASC" } })).map((r, i) => [r.taskId, i]));
    const position = (label: string) => ranAt.get(statuses.find((t) => t.label === label)!.id)!;
    expect(ranAt.size).toBe(4);
    expect(position("second")).toBeGreaterThan(position("first"));
    expect(position("callback")).toBeGreaterThan(position("in batch"));

    await ds.getRepository(BaseTaskEntity).createQueryBuilder().delete().execute();
    await ds.query("DELETE FROM ormq_task_dependencies");
    await expect(
      rolledBack(async () => {
        const first = await RecordRun.create({ label: "first" }).save();
        await RecordRun.create({ label: "second", dependsOn: [first] }).save();
      }),
    ).rejects.toBe(failure);
    expect(await count()).toEqual([0, 0]);
    expect(Number((await ds.query("SELECT COUNT(*) AS n FROM ormq_task_dependencies"))[0].n)).toBe(0);
  });
});
