import { Table, TableColumn, type MigrationInterface, type QueryRunner } from "typeorm";

/** The application's own schema: its orders table, and its task class's column on ormq_tasks. */
export class CreateOrders1765000000000 implements MigrationInterface {
  async up(q: QueryRunner): Promise<void> {
    await q.createTable(
      new Table({
        name: "nest_orders",
        columns: [
          { name: "id", type: "integer", isPrimary: true, isGenerated: true, generationStrategy: "increment" },
          { name: "item", type: "varchar", length: "100" },
          { name: "status", type: "varchar", length: "20", default: "'placed'" },
          { name: "confirmation_id", type: "varchar", length: "40", isNullable: true },
        ],
      }),
    );
    await q.addColumn("ormq_tasks", new TableColumn({ name: "order_id", type: "integer", isNullable: true }));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropColumn("ormq_tasks", "order_id");
    await q.dropTable("nest_orders");
  }
}
