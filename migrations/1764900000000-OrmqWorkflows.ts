import { MigrationInterface, QueryRunner, Table, TableIndex } from "typeorm";
import { schemaParts } from "./schemaParts";

/**
 * Workflows: the task whose attempt enqueued a task (`parent_id`, set by `ctx.enqueue`), with an
 * index of the tasks that have one (partial: the usual task, which has none, adds no entry; a
 * whole index where partial ones do not exist, as on MySQL); and the dependencies between tasks
 * (`ormq_task_dependencies`, an index on each end).
 */
export class OrmqWorkflows1764900000000 implements MigrationInterface {
  name = "OrmqWorkflows1764900000000";

  async up(runner: QueryRunner): Promise<void> {
    const schema = schemaParts(runner);
    await schema.addColumn("ormq_tasks", "parent_id", "bigint");
    await schema.createIndex("ormq_tasks_parent", "ormq_tasks", ["parent_id"], PARENT_INDEX);
    await schema.createIndex("ormq_tasks_waiting", "ormq_tasks", ["id"], WAITING_INDEX);
    // Where indexes cannot be partial (MySQL), the index of upcoming due times no longer leads with
    // the status: its entry then moved at every claim and every outcome, and now only when a
    // task's due time changes (see src/dialect/taskIndexes.ts). Elsewhere it stays as it is.
    await schema.replaceIndex("ormq_tasks_scheduled", "ormq_tasks", ["run_at"], SCHEDULED_INDEX_BEFORE, SCHEDULED_INDEX);
    await runner.createTable(
      new Table({
        name: "ormq_task_dependencies",
        columns: [
          { name: "task_id", type: "bigint", isPrimary: true },
          { name: "depends_on", type: "bigint", isPrimary: true },
          { name: "state", type: "varchar", length: "16", default: "'open'" },
          { name: "kind", type: "varchar", length: "16", default: "'success'" },
        ],
      }),
    );
    await runner.createIndex("ormq_task_dependencies", new TableIndex({ name: "ormq_task_dependencies_on", columnNames: ["depends_on", "state"] }));
    await runner.createIndex("ormq_task_dependencies", new TableIndex({ name: "ormq_task_dependencies_open", columnNames: ["task_id", "state"] }));
    await schema.setSchemaVersion(5, "update");
  }

  async down(runner: QueryRunner): Promise<void> {
    const schema = schemaParts(runner);
    await schema.setSchemaVersion(4, "update");
    await runner.dropTable("ormq_task_dependencies");
    await schema.replaceIndex("ormq_tasks_scheduled", "ormq_tasks", ["run_at"], SCHEDULED_INDEX, SCHEDULED_INDEX_BEFORE);
    await schema.dropIndex("ormq_tasks_waiting", "ormq_tasks", WAITING_INDEX);
    await schema.dropIndex("ormq_tasks_parent", "ormq_tasks", PARENT_INDEX);
    await schema.dropColumn("ormq_tasks", "parent_id");
  }
}

// A migration keeps its own copy of the definition (see src/dialect/taskIndexes.ts).
const PARENT_INDEX = { where: "parent_id IS NOT NULL", withoutWhere: "whole" as const };
const WAITING_INDEX = { where: "status = 'waiting'", withoutWhere: "none" as const };
const SCHEDULED_INDEX_BEFORE = { where: "status = 'pending' AND run_at > created_at", withoutWhere: { lead: ["status"] } };
const SCHEDULED_INDEX = { where: "status = 'pending' AND run_at > created_at", withoutWhere: "whole" as const };
