/**
 * How a worker waits out a database it cannot reach (a restart, a failover, a network cut):
 * doubling delays up to MAX_DELAY_MS. A long-running worker (processForever) waits as long as it
 * takes; a script (processN) gives up after GIVE_UP_AFTER failures in a row and hears the error.
 * A configuration error (tables from a newer ormq, a missing migration) is never waited out: no
 * number of tries fixes it.
 */
import { OrmqConfigurationError } from "../errors";

const MAX_DELAY_MS = 5_000;
const GIVE_UP_AFTER = 5;

export class DatabaseBackoff {
  private failures = 0;

  constructor(private readonly script: boolean) {}

  succeeded(): void {
    this.failures = 0;
  }

  /** The delay before the next try; throws `err` when it is not to be waited out. */
  failed(err: unknown): number {
    this.failures++;
    if (err instanceof OrmqConfigurationError) throw err;
    if (this.script && this.failures > GIVE_UP_AFTER) throw err;
    return Math.min(MAX_DELAY_MS, 100 * 2 ** this.failures);
  }
}
