import { MigrationInterface, QueryRunner, Table } from "typeorm";
import { schemaParts } from "./schemaParts";

/**
 * Recurring tasks (`ormq_schedules`), the schedule that enqueued a task (`schedule_name`), and a
 * running task's progress (`progress`, `progress_message`). Plain ADD COLUMNs: TypeORM's
 * addColumn rebuilds a SQLite table, which would lose what decorators cannot say (the claim
 * index's DESC, the unique guard's triggers).
 */
export class OrmqSchedules1764700000000 implements MigrationInterface {
  name = "OrmqSchedules1764700000000";

  async up(runner: QueryRunner): Promise<void> {
    await runner.createTable(
      new Table({
        name: "ormq_schedules",
        columns: [
          { name: "name", type: "varchar", length: "255", isPrimary: true },
          { name: "type", type: "varchar", length: "255" },
          { name: "cron", type: "varchar", length: "255" },
          { name: "timezone", type: "varchar", length: "64", isNullable: true },
          { name: "catch_up", type: "varchar", length: "16" },
          { name: "task", type: "text" },
          { name: "source", type: "varchar", length: "16" },
          { name: "paused", type: "integer", default: 0 },
          { name: "revision", type: "integer", default: 0 },
          { name: "last_tick", type: "bigint", isNullable: true },
          { name: "created_at", type: "bigint" },
          { name: "updated_at", type: "bigint" },
        ],
      }),
    );
    const schema = schemaParts(runner);
    await schema.addColumn("ormq_tasks", "schedule_name", "varchar(255)");
    await schema.addColumn("ormq_tasks", "progress", "double precision");
    await schema.addColumn("ormq_tasks", "progress_message", "varchar(200)");
    await schema.setSchemaVersion(3, "update");
  }

  async down(runner: QueryRunner): Promise<void> {
    const schema = schemaParts(runner);
    await schema.setSchemaVersion(2, "update");
    for (const column of ["progress_message", "progress", "schedule_name"]) await schema.dropColumn("ormq_tasks", column);
    await runner.dropTable("ormq_schedules");
  }
}
