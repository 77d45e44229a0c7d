import { MigrationInterface, QueryRunner, Table } from "typeorm";

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
    const idType = runner.connection.options.type === "postgres" ? "bigint" : "integer";
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
    await runner.query(`CREATE INDEX "ormq_rate_claims_key" ON "ormq_rate_claims" ("key", "until")`);
    await runner.query(`CREATE INDEX "ormq_rate_claims_until" ON "ormq_rate_claims" ("until")`);
    await runner.query(`INSERT INTO "ormq_meta" ("key", "value") VALUES ('schema_version', '2')`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP INDEX "ormq_rate_claims_until"`);
    await runner.query(`DROP INDEX "ormq_rate_claims_key"`);
    await runner.dropTable("ormq_rate_claims");
    await runner.dropTable("ormq_meta");
    await runner.dropTable("ormq_controls");
  }
}
