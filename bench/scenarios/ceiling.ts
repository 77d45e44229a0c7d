/**
 * The ceiling: the same PostgreSQL running a plain claim-and-complete loop in batches of 500 in a
 * PL/pgSQL block, no client at all (as in NOTES.md). ormq's drain is reported as a fraction of it.
 * A naive loop: context, not a limit.
 */
import { rate, withClient, type Databases, type Result } from "../common";

export async function ceiling(databases: Databases, tasks: number): Promise<Result> {
  const url = await databases.fresh("postgres");
  return withClient(url, async (client) => {
    await client.query(`CREATE TABLE bench_ceiling (id bigserial PRIMARY KEY, status text NOT NULL DEFAULT 'pending', priority int NOT NULL DEFAULT 0, run_at bigint NOT NULL DEFAULT 0, locked_by text)`);
    await client.query(`CREATE INDEX ON bench_ceiling (priority DESC, run_at, id) WHERE status = 'pending'`);
    await client.query(`INSERT INTO bench_ceiling (run_at) SELECT 0 FROM generate_series(1, $1)`, [tasks]);
    await client.query(`VACUUM ANALYZE bench_ceiling`);
    const t0 = performance.now();
    await client.query(`
      DO $$
      DECLARE ids bigint[];
      BEGIN
        LOOP
          WITH picked AS MATERIALIZED (
            SELECT id FROM bench_ceiling WHERE status = 'pending' ORDER BY priority DESC, run_at, id LIMIT 500 FOR UPDATE SKIP LOCKED
          ), claimed AS (
            UPDATE bench_ceiling t SET status = 'running', locked_by = 'w' FROM picked WHERE t.id = picked.id RETURNING t.id
          )
          SELECT array_agg(id) INTO ids FROM claimed;
          EXIT WHEN ids IS NULL;
          UPDATE bench_ceiling SET status = 'succeeded', locked_by = NULL WHERE id = ANY(ids);
          COMMIT;
        END LOOP;
      END $$`);
    return {
      scenario: "ceiling",
      database: "postgres",
      variant: "plain SQL loop, claim + complete in batches of 500, PL/pgSQL, no client",
      tasks,
      tasksPerSecond: rate(tasks, performance.now() - t0),
    } satisfies Result;
  });
}
