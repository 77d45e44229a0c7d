export default async function globalTeardown(): Promise<void> {
  const pg = (globalThis as { __ormqPg?: { stop(): Promise<void> } }).__ormqPg;
  if (pg) await pg.stop();
}
