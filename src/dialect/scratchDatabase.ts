/**
 * A throw-away PostgreSQL database for a test (`createTestDatabase` in ormq/testing): made on the
 * server a URL points to, and dropped with everything in it.
 */
import { randomUUID } from "node:crypto";
import { DataSource } from "typeorm";

/** Creates a new database next to the one `serverUrl` names; resolves with its URL and its drop. */
export async function createScratchDatabase(serverUrl: string): Promise<{ url: string; drop: () => Promise<void> }> {
  // A name made here, never from input: it is written into the statement as is.
  const name = `ormq_test_${randomUUID().replace(/-/g, "").slice(0, 16)}`;
  await onServer(serverUrl, `CREATE DATABASE ${name}`);
  const at = new URL(serverUrl);
  at.pathname = `/${name}`;
  return { url: at.toString(), drop: () => onServer(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

async function onServer(url: string, statement: string): Promise<void> {
  const server = new DataSource({ type: "postgres", url });
  await server.initialize();
  try {
    await server.query(statement);
  } finally {
    await server.destroy();
  }
}
