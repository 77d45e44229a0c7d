import { Column, Entity, PrimaryGeneratedColumn } from "typeorm";

@Entity("nest_orders")
export class Order {
  @PrimaryGeneratedColumn()
  id!: number;

  @Column({ type: "varchar", length: 100 })
  item!: string;

  /** "placed" until its confirmation is mailed, then "confirmed". */
  @Column({ type: "varchar", length: 20, default: "placed" })
  status!: string;

  @Column({ name: "confirmation_id", type: "varchar", length: 40, nullable: true })
  confirmationId!: string | null;
}
