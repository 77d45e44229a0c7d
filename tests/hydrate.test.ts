/**
 * The worker's hydrator is generated per task class from its columns' names (see
 * src/worker/hydrate.ts): names a developer may give (quotes, backslashes, line separators) are
 * string literals in it, never code, and the instance is the one find() loads.
 */
import { ChildEntity, Column, type DataSource } from "typeorm";
import { BaseTaskEntity } from "../src";
import { createDialect } from "../src/dialect";
import { ormqFor } from "../src/client/client";
import { hydrate } from "../src/worker/hydrate";
import { memoryLogger, useTestDatabase } from "./support/db";

@ChildEntity("odd_names")
class OddNames extends BaseTaskEntity {
  @Column({ type: "varchar", length: 64, nullable: true, name: "odd'col \\ `${x}`" })
  "it's \"odd\" \\ \u2028 `${x}`"!: string | null;

  @Column({ type: "integer", nullable: true, name: "plain_count" })
  count!: number | null;

  run() {
    return null;
  }
}

describe("hydrating a claimed row", () => {
  let ds: DataSource;
  useTestDatabase("sqlite", (opened) => ({ ds } = opened), [OddNames]);

  it("names with quotes, backslashes and line separators are read as names: the instance equals what find() loads", async () => {
    const saved = await ds.getRepository(OddNames).save(OddNames.create({ "it's \"odd\" \\ \u2028 `${x}`": "value'); throw 1; //", count: 3 }));
    const dialect = createDialect(ds, "hydrate-names", memoryLogger().logger);
    try {
      const [row] = await dialect.claim({ types: ["odd_names"], queues: null, limit: 1, leaseMs: 60_000 });
      const task = hydrate(ormqFor(ds).registry.byKey.get("odd_names")!.metadata, ds.driver, row);
      expect(task).toBeInstanceOf(OddNames);
      expect(task).toEqual(await ds.getRepository(OddNames).findOneByOrFail({ id: saved.id }));
      expect(task).toMatchObject({ "it's \"odd\" \\ \u2028 `${x}`": "value'); throw 1; //", count: 3, status: "running" });
    } finally {
      await dialect.close();
    }
  });
});
