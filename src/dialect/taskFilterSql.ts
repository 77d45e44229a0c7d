/**
 * A checked task filter (admin/taskFilter.ts) as conditions on a query builder over ormq_tasks:
 * values are always parameters, and column names come from the entity metadata, escaped by the
 * driver. The same statement on both databases.
 */
import type { ObjectLiteral, SelectQueryBuilder, WhereExpressionBuilder } from "typeorm";
import type { TaskStatus } from "../../entities/status";

/** A condition on one column (its database name, from the metadata). */
export type ColumnCondition =
  | { column: string; op: "eq"; value: string | number | boolean }
  | { column: string; op: "null" }
  | { column: string; op: "range"; min?: string | number | boolean; max?: string | number | boolean };

/** A filter whose names were checked against the metadata. */
export interface CheckedTaskFilter {
  id?: string;
  /** Any of these (none: any status). */
  statuses: TaskStatus[];
  type?: string;
  queue?: string;
  /** Epoch ms. */
  createdFrom?: number;
  createdBefore?: number;
  columns: ColumnCondition[];
}

/** Adds the filter's conditions to `query` over alias `t`. */
export function applyTaskFilter<Q extends SelectQueryBuilder<ObjectLiteral> | WhereExpressionBuilder>(
  query: Q,
  filter: CheckedTaskFilter,
  escape: (name: string) => string,
): Q {
  if (filter.id !== undefined) query.andWhere("t.id = :fId", { fId: filter.id });
  if (filter.statuses.length > 0) query.andWhere("t.status IN (:...fStatuses)", { fStatuses: filter.statuses });
  if (filter.type !== undefined) query.andWhere("t.type = :fType", { fType: filter.type });
  if (filter.queue !== undefined) query.andWhere("t.queue = :fQueue", { fQueue: filter.queue });
  if (filter.createdFrom !== undefined) query.andWhere("t.created_at >= :fFrom", { fFrom: filter.createdFrom });
  if (filter.createdBefore !== undefined) query.andWhere("t.created_at < :fBefore", { fBefore: filter.createdBefore });
  filter.columns.forEach((c, i) => {
    const column = `t.${escape(c.column)}`;
    if (c.op === "null") query.andWhere(`${column} IS NULL`);
    else if (c.op === "eq") query.andWhere(`${column} = :fv${i}`, { [`fv${i}`]: c.value });
    else {
      if (c.min !== undefined) query.andWhere(`${column} >= :fmin${i}`, { [`fmin${i}`]: c.min });
      if (c.max !== undefined) query.andWhere(`${column} <= :fmax${i}`, { [`fmax${i}`]: c.max });
    }
  });
  return query;
}
