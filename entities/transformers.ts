import type { ValueTransformer } from "typeorm";

/**
 * Instants are stored as epoch milliseconds in a `bigint` column and read back as `Date`.
 *
 * Why not a date column: one entity class must serve both dialects, and TypeORM rejects
 * `timestamptz` on better-sqlite3 while mapping `Date` to `timestamp without time zone` on
 * PostgreSQL, which node-postgres then reads back in the process's local time zone. An integer
 * count of milliseconds since the epoch is exact, has no time zone to get wrong, sorts correctly,
 * and lets the claim compare it with the database clock in plain SQL on both dialects.
 */
export const epochMillis: ValueTransformer = {
  to(value: unknown): unknown {
    if (value === null || value === undefined) return value;
    if (value instanceof Date) return value.getTime();
    // FindOperators and raw SQL functions pass through; TypeORM transforms operator values itself.
    return value;
  },
  from(value: unknown): Date | null {
    if (value === null || value === undefined) return null;
    return new Date(Number(value));
  },
};
