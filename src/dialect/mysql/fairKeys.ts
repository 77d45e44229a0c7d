/**
 * Statement 1 of a fair claim on MySQL and MariaDB: the keys with pending tasks after a key.
 *
 * Elsewhere it is one recursive statement, each step the least key past the one before (an index
 * probe, see fairKeysSql). MySQL and MariaDB cannot seek an index by a value the recursion made: a
 * correlated `MIN(fair_key) … WHERE fair_key > fair_keys.fk` reads every pending entry of the type
 * (measured on MariaDB: 300 ms for 20 keys among 30,000 pending tasks, and every claim's read grew
 * with the backlog). A bound given as a parameter is a seek. So the keys are found from keys known
 * already: one statement asks for the least key past `after` and past each known key (one probe
 * each), and again with what it found, until a statement finds no key it did not ask past. Each
 * gap between two keys found was then probed, so nothing in between was missed. With the keys
 * known (the usual case: a worker's keys change slowly) that is one statement; a key that
 * appeared between two known ones costs one more.
 */
import type { SqlParts } from "../contract";

/** Most keys a worker remembers per fair type (a bound on memory; past it keys are found again). */
const MAX_KNOWN = 10_000;

/**
 * One statement: the least pending key of `type` past `after` (from the first key when null) and
 * past each of `probes`, at most `count`, in key order.
 */
export function nextKeysSql(tasks: string, type: string, after: string | null, probes: readonly string[], count: number, sql: SqlParts): string {
  // Each probe's parameters pushed in the order they appear: the type, then the bound.
  const probe = (bound: () => string) => {
    const typeParam = sql.param(type, "text");
    return `SELECT (SELECT MIN(fair_key) FROM ${tasks} WHERE type = ${typeParam} AND status = 'pending' AND ${bound()}) AS fk`;
  };
  const first = probe(() => (after === null ? `fair_key >= ''` : `fair_key > ${sql.param(after, "text")}`));
  const rest = probes.map((k) => probe(() => `fair_key > ${sql.param(k, "text")}`));
  return `
    SELECT DISTINCT fk FROM (${[first, ...rest].join(" UNION ALL ")}) probes
    WHERE fk IS NOT NULL
    ORDER BY fk
    LIMIT ${sql.param(count, "int")}`;
}

/**
 * The keys a worker has seen per fair type, in the database's order (no comparison is made here:
 * MySQL compares keys by the column's collation), to probe past.
 */
export class KnownKeys {
  private readonly lists = new Map<string, string[]>();

  /**
   * Up to `count` keys of `type` past `after` (from the first when null), in key order:
   * `read(after, probes, count)` runs nextKeysSql.
   */
  async read(type: string, after: string | null, count: number, read: (after: string | null, probes: readonly string[], count: number) => Promise<string[]>): Promise<string[]> {
    let probes = this.past(type, after, count);
    // Each statement but the last finds a key more, so at most count + 1 are needed; the bound
    // holds even if the database orders or compares keys in a way this does not expect.
    for (let round = 0; ; round++) {
      const found = await read(after, probes, count);
      const asked = new Set(probes);
      // A key found that was not asked past: the gap after it was not probed yet.
      const settled = found.length === 0 || found.every((k) => asked.has(k)) || (found.length === count && found.slice(0, -1).every((k) => asked.has(k)));
      if (settled || round >= count) {
        this.learn(type, after, found);
        return found;
      }
      probes = found;
    }
  }

  /** The known keys right after `after` (none when `after` is not known). */
  private past(type: string, after: string | null, count: number): string[] {
    const list = this.lists.get(type) ?? [];
    const start = after === null ? 0 : list.indexOf(after) + 1;
    if (after !== null && start === 0) return [];
    return list.slice(start, start + count);
  }

  /** `keys` are the keys right after `after`: they replace what was known from there to the last of them. */
  private learn(type: string, after: string | null, keys: readonly string[]): void {
    const list = this.lists.get(type) ?? [];
    let start = after === null ? 0 : list.indexOf(after) + 1;
    if (after !== null && start === 0) {
      list.length = 0;
      list.push(after);
      start = 1;
    }
    const last = keys.length > 0 ? list.indexOf(keys[keys.length - 1], start) : -1;
    // Past the last key read, what was known stays when that key was known (the order holds on).
    const tail = last >= 0 ? list.slice(last + 1) : [];
    const next = [...list.slice(0, start), ...keys, ...tail].slice(0, MAX_KNOWN);
    this.lists.set(type, next);
  }
}
