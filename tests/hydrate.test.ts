/**
 * The worker's hydrator is generated per task class from its columns' names (see
 * src/worker/hydrate.ts): names a developer may give (quotes, backslashes, line separators) are
 * string literals in it, never code, and the instance is the one find() loads. Where code cannot
 * be made from strings, the same steps run as a loop.
 */
import { ChildEntity, Column, type DataSource } from "typeorm";
import { BaseTaskEntity } from "../src";
import { createDialect } from "../src/dialect";
import { ormqFor } from "../src/client/client";
import { hydrate } from "../src/worker/hydrate";
import { memoryLogger, useTestDatabase } from "./support/db";

// TypeORM's SQLite driver cannot create a column whose name holds a double quote: the rest is here.
const ODD_COLUMN = "odd'col \\ \u2028 \u2029 `${x}` </script>";
const ODD_PROPERTY = "it's \"odd\" \\ \u2028 `${x}`";

@ChildEntity("odd_names")
class OddNames extends BaseTaskEntity {
  @Column({ type: "varchar", length: 64, nullable: true, name: ODD_COLUMN })
  [ODD_PROPERTY]!: string | null;

  @Column({ type: "integer", nullable: true, name: "plain_count" })
  count!: number | null;

  run() {
    return null;
  }
}

@ChildEntity("odd_names_loop")
class OddNamesLoop extends OddNames {}

describe("hydrating a claimed row", () => {
  let ds: DataSource;
  useTestDatabase("sqlite", (opened) => ({ ds } = opened), [OddNames, OddNamesLoop]);

  const claimAndHydrate = async (cls: typeof OddNames, type: string) => {
    const saved = await ds.getRepository(cls).save(cls.create({ [ODD_PROPERTY]: "value'); throw 1; //", count: 3 }));
    const dialect = createDialect(ds, "hydrate-names", memoryLogger().logger);
    try {
      const [row] = await dialect.claim({ types: [type], queues: null, limit: 1, leaseMs: 60_000 });
      const task = hydrate(ormqFor(ds).registry.byKey.get(type)!.metadata, ds.driver, row);
      expect(task).toBeInstanceOf(cls);
      expect(task).toEqual(await ds.getRepository(cls).findOneByOrFail({ id: saved.id }));
      expect(task).toMatchObject({ [ODD_PROPERTY]: "value'); throw 1; //", count: 3, status: "running" });
    } finally {
      await dialect.close();
    }
  };

  it("column and property names with quotes, backslashes and line separators are read as names: the instance equals what find() loads", async () => {
    await claimAndHydrate(OddNames, "odd_names");
  });

  it("where code cannot be made from strings, the same row hydrates the same way", async () => {
    const original = globalThis.Function;
    // What `new Function` does under node --disallow-code-generation-from-strings.
    globalThis.Function = new Proxy(original, {
      construct() {
        throw new EvalError("Code generation from strings disallowed for this context");
      },
    });
    try {
      await claimAndHydrate(OddNamesLoop, "odd_names_loop");
    } finally {
      globalThis.Function = original;
    }
  });
});
