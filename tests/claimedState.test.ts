/**
 * A claim does not read back the columns every claim writes the same way: the worker, the lease and
 * the claim's now (see hydrateClaimed in src/worker/hydrate.ts). The task run() gets must still be
 * its row as stored. Apart from hydrate.test.ts: an entity there has a column name MariaDB cannot take.
 */
import { ChildEntity, type DataSource } from "typeorm";
import { BaseTaskEntity, processN, type TaskContext } from "../src";
import { memoryLogger, useTestDatabase, WITH_MARIADB } from "./support/db";

/** What a task's run() sees of its own row, against what find() reads of it at that moment. */
const seen: { self?: Record<string, unknown>; found?: Record<string, unknown> } = {};
const STATE = ["status", "attempts", "lockedBy", "lockedUntil", "startedAt", "updatedAt", "runAt", "createdAt", "maxAttempts", "queue"] as const;
const stateOf = (task: BaseTaskEntity) => Object.fromEntries(STATE.map((k) => [k, task[k]]));

@ChildEntity("sees_itself")
class SeesItself extends BaseTaskEntity {
  async run(ctx: TaskContext) {
    seen.self = stateOf(this);
    seen.found = stateOf(await ctx.manager.findOneByOrFail(SeesItself, { id: this.id }));
  }
}

describe.each(WITH_MARIADB)("the task run() gets on %s", (dialect) => {
  let ds: DataSource;
  useTestDatabase(dialect, (opened) => ({ ds } = opened), [SeesItself]);

  it("holds the row's state as find() reads it while it runs: its worker, lease, start and update times", async () => {
    delete seen.self;
    delete seen.found;
    await ds.getRepository(SeesItself).save(SeesItself.create());
    const summary = await processN(SeesItself, 1, { dataSource: ds, logger: memoryLogger().logger });
    expect(summary.succeeded).toBe(1);
    expect(seen.found).toMatchObject({ status: "running", attempts: 1 });
    expect(seen.found!.lockedBy).toEqual(expect.any(String));
    expect(seen.found!.lockedUntil).toBeInstanceOf(Date);
    expect(seen.self).toEqual(seen.found);
  });
});
