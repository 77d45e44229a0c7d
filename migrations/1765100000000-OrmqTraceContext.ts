import { MigrationInterface, QueryRunner } from "typeorm";
import { schemaParts } from "./schemaParts";

/**
 * The trace context a task was enqueued in (`trace_context`, written by ormq/opentelemetry), so
 * that its attempts are traced into the request that enqueued it. No index: it is only read with
 * the task's row.
 */
export class OrmqTraceContext1765100000000 implements MigrationInterface {
  name = "OrmqTraceContext1765100000000";

  async up(runner: QueryRunner): Promise<void> {
    const schema = schemaParts(runner);
    await schema.addColumn("ormq_tasks", "trace_context", "varchar(1024)");
    await schema.setSchemaVersion(6, "update");
  }

  async down(runner: QueryRunner): Promise<void> {
    const schema = schemaParts(runner);
    await schema.setSchemaVersion(5, "update");
    await schema.dropColumn("ormq_tasks", "trace_context");
  }
}
