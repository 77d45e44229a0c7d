import { MigrationInterface, QueryRunner } from "typeorm";
import { schemaParts } from "./schemaParts";

/**
 * Issue 29's columns. `trace_context`: the trace context a task was enqueued in (written by
 * ormq/opentelemetry), read only with the task's row. `fair_key`: a fair class's share key (see
 * src/flow/fairnessSpec.ts), and the index its claim reads: the pending tasks of fair classes by
 * type and key in claim order (partial, so other tasks add no entry; where indexes cannot be
 * partial, as on MySQL, the first worker of a fair class creates a whole one, see
 * src/dialect/taskIndexes.ts, so that an application without fairness pays nothing for it).
 */
export class OrmqIntegrations1765100000000 implements MigrationInterface {
  name = "OrmqIntegrations1765100000000";

  async up(runner: QueryRunner): Promise<void> {
    const schema = schemaParts(runner);
    await schema.addColumn("ormq_tasks", "trace_context", "varchar(1024)");
    await schema.addColumn("ormq_tasks", "fair_key", "varchar(255)");
    await schema.createIndex("ormq_tasks_fair", "ormq_tasks", FAIR_COLUMNS, FAIR_INDEX);
    await schema.setSchemaVersion(6, "update");
  }

  async down(runner: QueryRunner): Promise<void> {
    const schema = schemaParts(runner);
    await schema.setSchemaVersion(5, "update");
    await schema.dropIndex("ormq_tasks_fair", "ormq_tasks", FAIR_INDEX);
    await schema.dropColumn("ormq_tasks", "fair_key");
    await schema.dropColumn("ormq_tasks", "trace_context");
  }
}

// A migration keeps its own copy of the definition (see src/dialect/taskIndexes.ts).
const FAIR_COLUMNS = ["type", "fair_key", "priority DESC", "run_at", "id"];
const FAIR_INDEX = { where: "status = 'pending' AND fair_key IS NOT NULL", withoutWhere: "none" as const };
