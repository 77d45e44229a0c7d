/** Larger statements buy nothing measurable and make one round trip hold locks longer. */
const MAX_ROWS_PER_STATEMENT = 2_000;

/** Rows per multi-row INSERT of `columns` values each: under the database's parameter limit, and at most 2,000. */
export function rowsPerStatement(maxParameters: number, columns: number): number {
  return Math.max(1, Math.min(MAX_ROWS_PER_STATEMENT, Math.floor(maxParameters / columns)));
}
