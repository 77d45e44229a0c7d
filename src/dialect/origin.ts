import { randomBytes } from "node:crypto";

/**
 * A new tag for a DataSource's NOTIFYs, made once by its client. A worker on the same DataSource
 * was already woken in-process by the same commit (see client/announcements.ts), so it ignores
 * NOTIFYs with its own tag: answering them cost one more empty claim, and its round trips, per
 * enqueue.
 */
export function newOrigin(): string {
  return randomBytes(6).toString("hex");
}
