import { randomBytes } from "node:crypto";
import type { DataSource } from "typeorm";

/**
 * A tag per DataSource in this process, carried by its NOTIFYs. A worker on the same DataSource
 * was already woken in-process by the same commit (see enqueue/announcements.ts), so it ignores
 * NOTIFYs with its own tag: answering them cost one more empty claim, and its round trips, per
 * enqueue.
 */
const origins = new WeakMap<DataSource, string>();

export function originOf(dataSource: DataSource): string {
  let origin = origins.get(dataSource);
  if (!origin) origins.set(dataSource, (origin = randomBytes(6).toString("hex")));
  return origin;
}
