import fc from "fast-check";
import { claimSize, MAX_UNWRITTEN, type ClaimRoom } from "../src/worker/claimLoop";

const count = fc.integer({ min: 1, max: 100_000 });
const settings = fc.record({ concurrency: count, prefetch: fc.integer({ min: 0, max: 100_000 }), batchSize: count });

describe("how many tasks a worker claims (claimSize)", () => {
  it("a worker holding nothing, with nothing unwritten, always claims (any slots, buffer and batch size)", () => {
    fc.assert(
      fc.property(settings, fc.oneof(count, fc.constant(Infinity)), ({ concurrency, prefetch, batchSize }, remaining) => {
        expect(claimSize({ concurrency, prefetch, batchSize, busy: 0, buffered: 0, remaining, unwritten: 0 })).toBeGreaterThan(0);
      }),
    );
  });

  it("never claims past a slot, the buffer, the batch, what processN has left or the unwritten bound", () => {
    const room = settings.chain(({ concurrency, prefetch, batchSize }) =>
      fc.record<ClaimRoom>({
        concurrency: fc.constant(concurrency),
        prefetch: fc.constant(prefetch),
        batchSize: fc.constant(batchSize),
        busy: fc.integer({ min: 0, max: concurrency }),
        buffered: fc.integer({ min: 0, max: prefetch }),
        remaining: fc.oneof(count, fc.constant(Infinity)),
        unwritten: fc.integer({ min: 0, max: MAX_UNWRITTEN + 10 }),
      }),
    );
    fc.assert(
      fc.property(room, (r) => {
        const n = claimSize(r);
        expect(n).toBeGreaterThanOrEqual(0);
        expect(Number.isInteger(n)).toBe(true);
        expect(n).toBeLessThanOrEqual(Math.max(0, r.concurrency + r.prefetch - r.busy - r.buffered));
        expect(n).toBeLessThanOrEqual(r.batchSize);
        expect(n).toBeLessThanOrEqual(r.remaining);
        expect(n).toBeLessThanOrEqual(Math.max(0, MAX_UNWRITTEN - r.unwritten));
      }),
    );
  });

  it("with a buffer, waits for room for half a batch instead of claiming a task at a time", () => {
    const room = { concurrency: 50, prefetch: 450, batchSize: 500, remaining: Infinity, unwritten: 0 };
    expect(claimSize({ ...room, busy: 50, buffered: 449 })).toBe(0);
    expect(claimSize({ ...room, busy: 50, buffered: 200 })).toBe(250);
    // Without one, every free slot is claimed for.
    expect(claimSize({ ...room, prefetch: 0, busy: 49, buffered: 0 })).toBe(1);
  });
});
