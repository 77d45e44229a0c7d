/**
 * What of an error crosses from a thread or a task process back to the worker (toRecord in the
 * task's process, fromRecord in the worker's). Anything a task throws must cross without throwing,
 * as a value the structured clone takes, and come back matching what it was.
 */
import fc from "fast-check";
import { errorIs, RemoteTaskError, retryOn, fixedDelay, SnoozeTask } from "../src";
import { fromRecord, toRecord } from "../src/worker/remote/messages";

class HttpError extends Error {
  status = 503;
  retryable = true;
  nested = { not: "plain" };
}
class NotFound extends HttpError {
  constructor() {
    super("no such page");
    this.name = "NotFound";
  }
}
class BadInput extends TypeError {}

const cross = (thrown: unknown) => fromRecord(structuredClone(toRecord(thrown)));

describe("errors across a thread or process boundary", () => {
  it("a built-in error comes back as its class; a class of the task's own as a RemoteTaskError that errorIs and retryOn match by name", () => {
    const type = cross(new TypeError("bad"));
    expect(type).toBeInstanceOf(TypeError);
    expect(type).not.toBeInstanceOf(RemoteTaskError);

    const notFound = cross(new NotFound());
    expect(notFound).toBeInstanceOf(RemoteTaskError);
    expect(notFound).toMatchObject({ name: "NotFound", message: "no such page", classNames: ["NotFound", "HttpError"], status: 503, retryable: true });
    expect((notFound as unknown as { nested?: unknown }).nested).toBeUndefined(); // not a plain value: left behind
    expect(errorIs(notFound, HttpError)).toBe(true);
    expect(errorIs(notFound, NotFound)).toBe(true);
    expect(errorIs(notFound, BadInput)).toBe(false);
    expect(retryOn([HttpError], fixedDelay(0))(1, notFound)).toBeInstanceOf(Date);
    expect(retryOn([BadInput], fixedDelay(0))(1, notFound)).toBeNull();

    // A class of yours below a built-in one keeps both names.
    const bad = cross(new BadInput("no"));
    expect(bad).toMatchObject({ classNames: ["BadInput", "TypeError"] });
    expect(errorIs(bad, TypeError)).toBe(true);

    // A thrown string or object comes back as a plain Error carrying its text.
    const thrownText = cross("just text");
    expect(thrownText).not.toBeInstanceOf(RemoteTaskError);
    expect(thrownText).toMatchObject({ name: "Error", message: expect.stringContaining("just text") });

    // ormq's own meanings survive as their classes.
    expect(cross(new SnoozeTask(250))).toMatchObject({ delayMs: 250 });
    expect(cross(new SnoozeTask(250))).toBeInstanceOf(SnoozeTask);
  });

  it("anything thrown crosses without throwing, clonable, with bounded properties (generated values and hostile errors)", () => {
    const hostileError = fc.record({ message: fc.string(), props: fc.dictionary(fc.string(), fc.anything()) }).map(({ message, props }) => {
      const e = new HttpError(message);
      for (const [k, v] of Object.entries(props)) {
        try {
          (e as unknown as Record<string, unknown>)[k] = v;
        } catch {
          // a key Error refuses
        }
      }
      Object.defineProperty(e, "boom", { enumerable: true, get: () => { throw new Error("getter"); } });
      return e;
    });
    const throwingPrototype = fc.constant(null).map(() => {
      const e = new HttpError("x");
      // Its prototype throws on what an error is read for (fast-check's printing aside).
      const trap = (key: string | symbol) => {
        if (key === "toString" || typeof key === "symbol") return () => "a hostile error";
        throw new Error(`trap: ${key}`);
      };
      Object.setPrototypeOf(e, new Proxy(HttpError.prototype, { get: (_target, key) => trap(key), getPrototypeOf: () => { throw new Error("trap"); } }));
      return e;
    });
    fc.assert(
      fc.property(fc.oneof(fc.anything(), hostileError, throwingPrototype), (thrown) => {
        const record = toRecord(thrown);
        const back = fromRecord(structuredClone(record));
        expect(back).toBeInstanceOf(Error);
        expect(typeof back.message).toBe("string");
        expect(Object.keys(record.props ?? {}).length).toBeLessThanOrEqual(20);
        for (const value of Object.values(record.props ?? {})) {
          expect(value === null || ["string", "number", "boolean"].includes(typeof value)).toBe(true);
          if (typeof value === "string") expect(value.length).toBeLessThanOrEqual(1_000);
        }
      }),
      { numRuns: 300 },
    );
  });
});
