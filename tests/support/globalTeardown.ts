export default async function globalTeardown(): Promise<void> {
  const pg = (globalThis as { __ormqPg?: { stop(): Promise<void> } }).__ormqPg;
  if (pg) await pg.stop();
  const mariadb = (globalThis as { __ormqMariaDb?: { stop(): Promise<void> } }).__ormqMariaDb;
  if (mariadb) await mariadb.stop();
}
