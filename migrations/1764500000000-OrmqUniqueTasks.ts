import { MigrationInterface, QueryRunner } from "typeorm";
import * as postgresGuard from "../src/dialect/postgres/uniqueGuard";
import * as sqliteGuard from "../src/dialect/sqlite/uniqueGuard";

/**
 * Unique tasks (`static unique`): the key columns, their partial unique indexes (the same names
 * and predicates as BaseTaskEntity's decorators, so synchronize and this migration agree), and
 * the guard trigger that turns a duplicate's insert into no write (see the dialects' uniqueGuard).
 */
export class OrmqUniqueTasks1764500000000 implements MigrationInterface {
  name = "OrmqUniqueTasks1764500000000";

  async up(runner: QueryRunner): Promise<void> {
    // Plain ADD COLUMN: TypeORM's addColumns rebuilds a SQLite table, which would lose what its
    // decorators cannot say (the claim index's DESC).
    await runner.query(`ALTER TABLE "ormq_tasks" ADD COLUMN "unique_key" text`);
    await runner.query(`ALTER TABLE "ormq_tasks" ADD COLUMN "unique_window" text`);
    await runner.query(
      `CREATE UNIQUE INDEX "ormq_tasks_unique" ON "ormq_tasks" ("unique_key") WHERE unique_key IS NOT NULL AND status IN ('pending', 'running')`,
    );
    await runner.query(`CREATE UNIQUE INDEX "ormq_tasks_unique_window" ON "ormq_tasks" ("unique_window") WHERE unique_window IS NOT NULL`);
    for (const statement of this.guard(runner).uniqueGuardStatements(`"ormq_tasks"`)) await runner.query(statement);
  }

  async down(runner: QueryRunner): Promise<void> {
    for (const statement of this.guard(runner).dropUniqueGuardStatements(`"ormq_tasks"`)) await runner.query(statement);
    await runner.query(`DROP INDEX "ormq_tasks_unique_window"`);
    await runner.query(`DROP INDEX "ormq_tasks_unique"`);
    await runner.query(`ALTER TABLE "ormq_tasks" DROP COLUMN "unique_window"`);
    await runner.query(`ALTER TABLE "ormq_tasks" DROP COLUMN "unique_key"`);
  }

  private guard(runner: QueryRunner) {
    return runner.connection.options.type === "postgres" ? postgresGuard : sqliteGuard;
  }
}
