/**
 * At most 1,000 rows per statement: a 2,000-row INSERT into ormq_tasks took 125–142 ms on
 * PostgreSQL (the workflows bench's 10,000-task enqueues), past the 100 ms no statement of ormq's
 * should take, while enqueueMany's rate did not move measurably between the two (three
 * alternating pairs on PostgreSQL, 48k–78k tasks/s either way). Larger statements also hold
 * their locks longer.
 */
const MAX_ROWS_PER_STATEMENT = 1_000;

/** Rows per multi-row INSERT of `columns` values each: under the database's parameter limit, and at most 1,000. */
export function rowsPerStatement(maxParameters: number, columns: number): number {
  return Math.max(1, Math.min(MAX_ROWS_PER_STATEMENT, Math.floor(maxParameters / columns)));
}
