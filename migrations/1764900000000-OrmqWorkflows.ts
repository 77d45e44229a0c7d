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
    await schema.dropIndex("ormq_tasks_waiting", "ormq_tasks", WAITING_INDEX);
    await schema.dropIndex("ormq_tasks_parent", "ormq_tasks", PARENT_INDEX);
    await schema.dropColumn("ormq_tasks", "parent_id");
  }
}

// A migration keeps its own copy of the definition (see src/dialect/taskIndexes.ts).
const PARENT_INDEX = { where: "parent_id IS NOT NULL", withoutWhere: "whole" as const };
const WAITING_INDEX = { where: "status = 'waiting'", withoutWhere: "none" as const };
