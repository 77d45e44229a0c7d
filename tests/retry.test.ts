import { exponentialBackoff, fixedDelay, limitAttempts, noRetry, retryOn } from "../src";

const NOW = 1_000_000;
const clock = { now: () => NOW };
const delays = (policy: (a: number, e: Error) => Date | null, attempts: number[]) =>
  attempts.map((a) => {
    const at = policy(a, new Error("x"));
    return at === null ? null : at.getTime() - NOW;
  });

describe("retry policies", () => {
  it("exponentialBackoff without jitter: base, base·factor, … capped at maxMs", () => {
    const policy = exponentialBackoff({ baseMs: 100, factor: 3, maxMs: 2_000, jitter: false, ...clock });
    expect(delays(policy, [1, 2, 3, 4, 5])).toEqual([100, 300, 900, 2_000, 2_000]);
  });

  it("exponentialBackoff with jitter stays within [d/2, d] and spans it", () => {
    const low = exponentialBackoff({ baseMs: 1_000, ...clock, random: () => 0 });
    const high = exponentialBackoff({ baseMs: 1_000, ...clock, random: () => 0.999999 });
    expect(delays(low, [1, 2, 3])).toEqual([500, 1_000, 2_000]);
    expect(delays(high, [1, 2, 3])).toEqual([1_000, 2_000, 4_000]);
    const real = exponentialBackoff({ baseMs: 1_000, ...clock });
    for (let i = 0; i < 200; i++) {
      const [d] = delays(real, [4]);
      expect(d).toBeGreaterThanOrEqual(4_000);
      expect(d).toBeLessThanOrEqual(8_000);
    }
  });

  it("the default is exponential from 1 s, capped at an hour", () => {
    const policy = exponentialBackoff({ jitter: false, ...clock });
    expect(delays(policy, [1, 2, 30])).toEqual([1_000, 2_000, 3_600_000]);
  });

  it("fixedDelay is the same every time", () => {
    expect(delays(fixedDelay(250, clock), [1, 2, 9])).toEqual([250, 250, 250]);
  });

  it("limitAttempts gives up from the nth attempt on", () => {
    expect(delays(limitAttempts(3, fixedDelay(10, clock)), [1, 2, 3, 4])).toEqual([10, 10, null, null]);
  });

  it("retryOn retries only the listed error classes (and their subclasses)", () => {
    class Transient extends Error {}
    class VeryTransient extends Transient {}
    const policy = retryOn([Transient, TypeError], fixedDelay(5, clock));
    const at = (e: Error) => policy(1, e);
    expect(at(new Transient())).not.toBeNull();
    expect(at(new VeryTransient())).not.toBeNull();
    expect(at(new TypeError())).not.toBeNull();
    expect(at(new RangeError())).toBeNull();
    expect(noRetry(1, new Error())).toBeNull();
  });

  it("rejects nonsense parameters with a message naming them", () => {
    expect(() => fixedDelay(-1)).toThrow(/fixedDelay\(ms\)/);
    expect(() => exponentialBackoff({ factor: 0.5 })).toThrow(/factor/);
    expect(() => limitAttempts(0, noRetry)).toThrow(/limitAttempts: n/);
    expect(() => retryOn([], noRetry)).toThrow(/retryOn/);
  });
});
