import { MigrationInterface, QueryRunner } from "typeorm";
import { schemaParts } from "./schemaParts";

const UNIQUE_KEY = { unique: true, where: "unique_key IS NOT NULL AND status IN ('pending', 'running')", withoutWhere: "none" } as const;
const UNIQUE_WINDOW = { unique: true, where: "unique_window IS NOT NULL", withoutWhere: "whole" } as const;

/**
 * Unique tasks (`static unique`): the key columns, their partial unique indexes (the same names
 * and predicates as BaseTaskEntity's decorators, so synchronize and this migration agree), and
 * the guard trigger that turns a duplicate's insert into no write (see the dialects' uniqueGuard).
 */
export class OrmqUniqueTasks1764500000000 implements MigrationInterface {
  name = "OrmqUniqueTasks1764500000000";

  async up(runner: QueryRunner): Promise<void> {
    const schema = schemaParts(runner);
    await schema.addColumn("ormq_tasks", "unique_key", "text");
    await schema.addColumn("ormq_tasks", "unique_window", "text");
    await schema.createIndex("ormq_tasks_unique", "ormq_tasks", ["unique_key"], UNIQUE_KEY);
    await schema.createIndex("ormq_tasks_unique_window", "ormq_tasks", ["unique_window"], UNIQUE_WINDOW);
    for (const statement of schema.uniqueGuard.install(schema.q("ormq_tasks"))) await runner.query(statement);
  }

  async down(runner: QueryRunner): Promise<void> {
    const schema = schemaParts(runner);
    for (const statement of schema.uniqueGuard.drop(schema.q("ormq_tasks"))) await runner.query(statement);
    await schema.dropIndex("ormq_tasks_unique_window", "ormq_tasks", UNIQUE_WINDOW);
    await schema.dropIndex("ormq_tasks_unique", "ormq_tasks", UNIQUE_KEY);
    await schema.dropColumn("ormq_tasks", "unique_window");
    await schema.dropColumn("ormq_tasks", "unique_key");
  }
}
