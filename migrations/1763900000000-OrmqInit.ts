import { MigrationInterface, QueryRunner, Table } from "typeorm";

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
    // SQLite allows AUTOINCREMENT only on INTEGER PRIMARY KEY, which is 64-bit there anyway.
    const idType = runner.connection.options.type === "postgres" ? "bigint" : "integer";
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
    await runner.query(`CREATE INDEX "ormq_tasks_type" ON "ormq_tasks" ("type") WHERE status = 'failed'`);
    // The earliest upcoming due time among tasks made ready later than they were created, for an
    // idle worker's sleep.
    await runner.query(
      `CREATE INDEX "ormq_tasks_scheduled" ON "ormq_tasks" ("run_at") WHERE status = 'pending' AND run_at > created_at`,
    );
    // Running tasks by lease end: the rescue of expired leases reads only this.
    await runner.query(`CREATE INDEX "ormq_tasks_lease" ON "ormq_tasks" ("locked_until") WHERE status = 'running'`);
    // Ready tasks in claim order. The only index ormq's hot path needs; partial, so finished tasks
    // (most of the table, in time) cost it nothing.
    await runner.query(
      `CREATE INDEX "ormq_tasks_claim" ON "ormq_tasks" ("priority" DESC, "run_at", "id") WHERE status = 'pending'`,
    );
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
    await runner.query(`CREATE INDEX "ormq_workers_heartbeat" ON "ormq_workers" ("last_heartbeat_at")`);
  }

  /** No foreign key to `ormq_tasks`: see TaskEventEntity (prune removes events with their tasks). */
  private async createEvents(runner: QueryRunner): Promise<void> {
    const idType = runner.connection.options.type === "postgres" ? "bigint" : "integer";
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
    await runner.query(`CREATE INDEX "ormq_task_events_task" ON "ormq_task_events" ("task_id")`);
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query(`DROP INDEX "ormq_task_events_task"`);
    await runner.dropTable("ormq_task_events");
    await runner.query(`DROP INDEX "ormq_workers_heartbeat"`);
    await runner.dropTable("ormq_workers");
    await runner.query(`DROP INDEX "ormq_tasks_lease"`);
    await runner.query(`DROP INDEX "ormq_tasks_claim"`);
    await runner.query(`DROP INDEX "ormq_tasks_type"`);
    await runner.query(`DROP INDEX "ormq_tasks_scheduled"`);
    await runner.dropTable("ormq_tasks");
  }
}
