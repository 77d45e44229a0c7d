import { MigrationInterface, QueryRunner } from "typeorm";
import { schemaParts } from "./schemaParts";

/**
 * One history row per attempt: the row of an attempt's outcome carries when it started
 * (`ormq_task_events.started_at`), and no "started" row is written at the claim. Rows written
 * before keep their "started" events; readers list both kinds the same way.
 */
export class OrmqAttemptStarts1764800000000 implements MigrationInterface {
  name = "OrmqAttemptStarts1764800000000";

  async up(runner: QueryRunner): Promise<void> {
    const schema = schemaParts(runner);
    await schema.addColumn("ormq_task_events", "started_at", "bigint");
    await schema.setSchemaVersion(4, "update");
  }

  async down(runner: QueryRunner): Promise<void> {
    const schema = schemaParts(runner);
    await schema.setSchemaVersion(3, "update");
    await schema.dropColumn("ormq_task_events", "started_at");
  }
}
