import { MigrationInterface, QueryRunner, Table } from "typeorm";
import { schemaParts } from "./schemaParts";

/**
 * Flow controls set at run time (`ormq_controls`: paused queues and types, queue concurrency and
 * rate limits), the claims that rate limits count (`ormq_rate_claims`), and ormq's own settings (`ormq_meta`), with the schema version that workers check.
 */
export class OrmqFlowControl1764600000000 implements MigrationInterface {
  name = "OrmqFlowControl1764600000000";

  async up(runner: QueryRunner): Promise<void> {
    await runner.createTable(
      new Table({
        name: "ormq_controls",
        columns: [
          { name: "scope", type: "varchar", length: "16", isPrimary: true },
          { name: "name", type: "varchar", length: "255", isPrimary: true },
          { name: "paused", type: "integer", default: 0 },
          { name: "concurrency", type: "integer", isNullable: true },
          { name: "rate_max", type: "integer", isNullable: true },
          { name: "rate_per_ms", type: "bigint", isNullable: true },
          { name: "updated_at", type: "bigint" },
        ],
      }),
    );
    await runner.createTable(
      new Table({
        name: "ormq_meta",
        columns: [
          { name: "key", type: "varchar", length: "64", isPrimary: true },
          { name: "value", type: "varchar", length: "255" },
        ],
      }),
    );
    const schema = schemaParts(runner);
    const idType = schema.generatedIdType;
    await runner.createTable(
      new Table({
        name: "ormq_rate_claims",
        columns: [
          { name: "id", type: idType, isPrimary: true, isGenerated: true, generationStrategy: "increment" },
          { name: "key", type: "varchar", length: "600" },
          { name: "until", type: "bigint" },
        ],
      }),
    );
    await schema.createIndex("ormq_rate_claims_key", "ormq_rate_claims", ["key", "until"]);
    await schema.createIndex("ormq_rate_claims_until", "ormq_rate_claims", ["until"]);
    await schema.setSchemaVersion(2, "insert");
  }

  async down(runner: QueryRunner): Promise<void> {
    const schema = schemaParts(runner);
    await schema.dropIndex("ormq_rate_claims_until", "ormq_rate_claims");
    await schema.dropIndex("ormq_rate_claims_key", "ormq_rate_claims");
    await runner.dropTable("ormq_rate_claims");
    await runner.dropTable("ormq_meta");
    await runner.dropTable("ormq_controls");
  }
}
