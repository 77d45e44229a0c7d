import { MigrationInterface, QueryRunner, Table } from "typeorm";
import { schemaParts } from "./schemaParts";

/**
 * Creates `ormq_tasks` (the columns of BaseTaskEntity), `ormq_workers` (WorkerEntity) and
 * `ormq_task_events` (TaskEventEntity), on PostgreSQL and SQLite.
 *
 * Columns your own task classes add live in the same table: generate a migration for them with
 * the TypeORM CLI as for any entity. The claim index is created with `priority DESC` (which the
 * entity's decorator cannot say); synchronize sees the same name and columns and leaves it alone.
 */
export class OrmqInit1763900000000 implements MigrationInterface {
  name = "OrmqInit1763900000000";

  async up(runner: QueryRunner): Promise<void> {
    const millis = { type: "bigint" } as const;
    const schema = schemaParts(runner);
    const idType = schema.generatedIdType;
    await runner.createTable(
      new Table({
        name: "ormq_tasks",
        columns: [
          { name: "id", type: idType, isPrimary: true, isGenerated: true, generationStrategy: "increment" },
          { name: "type", type: "varchar", length: "255" },
          { name: "queue", type: "varchar", length: "255" },
          { name: "status", type: "varchar", length: "16", default: "'pending'" },
          { name: "priority", type: "integer" },
          { name: "run_at", ...millis },
          { name: "attempts", type: "integer", default: 0 },
          { name: "max_attempts", type: "integer" },
          { name: "last_error", type: "text", isNullable: true },
          { name: "errors", type: "text", isNullable: true },
          { name: "result", type: "text", isNullable: true },
          { name: "created_at", ...millis },
          { name: "updated_at", ...millis },
          { name: "started_at", ...millis, isNullable: true },
          { name: "finished_at", ...millis, isNullable: true },
          { name: "locked_by", type: "varchar", length: "255", isNullable: true },
          { name: "locked_until", ...millis, isNullable: true },
          { name: "timeout_ms", type: "integer", isNullable: true },
          { name: "cancel_requested_at", ...millis, isNullable: true },
        ],
      }),
    );
    await schema.createIndex("ormq_tasks_type", "ormq_tasks", ["type"], { where: "status = 'failed'", withoutWhere: "none" });
    // The earliest upcoming due time among tasks made ready later than they were created, for an
    // idle worker's sleep.
    await schema.createIndex("ormq_tasks_scheduled", "ormq_tasks", ["run_at"], { where: "status = 'pending' AND run_at > created_at", withoutWhere: { lead: ["status"] } });
    // Running tasks by lease end: the rescue of expired leases reads only this.
    await schema.createIndex("ormq_tasks_lease", "ormq_tasks", ["locked_until"], { where: "status = 'running'", withoutWhere: { lead: ["status"] } });
    // Ready tasks in claim order. The only index ormq's hot path needs; partial, so finished tasks
    // (most of the table, in time) cost it nothing.
    await schema.createIndex("ormq_tasks_claim", "ormq_tasks", ["priority DESC", "run_at", "id"], { where: "status = 'pending'", withoutWhere: { lead: ["status"] } });
    await this.createWorkers(runner);
    await this.createEvents(runner);
  }

  private async createWorkers(runner: QueryRunner): Promise<void> {
    await runner.createTable(
      new Table({
        name: "ormq_workers",
        columns: [
          { name: "id", type: "varchar", length: "255", isPrimary: true },
          { name: "name", type: "varchar", length: "255" },
          { name: "host", type: "varchar", length: "255" },
          { name: "pid", type: "integer" },
          { name: "queues", type: "text", isNullable: true },
          { name: "state", type: "varchar", length: "16" },
          { name: "started_at", type: "bigint" },
          { name: "last_heartbeat_at", type: "bigint" },
          { name: "stopped_at", type: "bigint", isNullable: true },
        ],
      }),
    );
    await schemaParts(runner).createIndex("ormq_workers_heartbeat", "ormq_workers", ["last_heartbeat_at"]);
  }

  /** No foreign key to `ormq_tasks`: see TaskEventEntity (prune removes events with their tasks). */
  private async createEvents(runner: QueryRunner): Promise<void> {
    const schema = schemaParts(runner);
    const idType = schema.generatedIdType;
    await runner.createTable(
      new Table({
        name: "ormq_task_events",
        columns: [
          { name: "id", type: idType, isPrimary: true, isGenerated: true, generationStrategy: "increment" },
          { name: "task_id", type: "bigint" },
          { name: "kind", type: "varchar", length: "16" },
          { name: "at", type: "bigint" },
          { name: "worker", type: "varchar", length: "255", isNullable: true },
          { name: "attempt", type: "integer", isNullable: true },
          { name: "error", type: "text", isNullable: true },
        ],
      }),
    );
    await schema.createIndex("ormq_task_events_task", "ormq_task_events", ["task_id"]);
  }

  async down(runner: QueryRunner): Promise<void> {
    const schema = schemaParts(runner);
    await schema.dropIndex("ormq_task_events_task", "ormq_task_events");
    await runner.dropTable("ormq_task_events");
    await schema.dropIndex("ormq_workers_heartbeat", "ormq_workers");
    await runner.dropTable("ormq_workers");
    for (const index of ["ormq_tasks_lease", "ormq_tasks_claim", "ormq_tasks_scheduled"]) await schema.dropIndex(index, "ormq_tasks");
    await schema.dropIndex("ormq_tasks_type", "ormq_tasks", { where: "status = 'failed'", withoutWhere: "none" });
    await runner.dropTable("ormq_tasks");
  }
}
