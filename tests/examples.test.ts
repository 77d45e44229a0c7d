/**
 * The programs under examples/ run as documented (docs/workflows.md shows order-workflow.ts).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main as orderWorkflow } from "../examples/order-workflow";

describe("examples", () => {
  const dir = mkdtempSync(join(tmpdir(), "ormq-examples-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("order-workflow: the charge is retried, the stock and the mail follow it, the summary comes last with their results", async () => {
    const log = jest.spyOn(console, "log").mockImplementation(() => {});
    try {
      const outcome = await orderWorkflow(join(dir, "order-workflow.sqlite"));
      expect(outcome).toEqual({
        order: { id: 1, status: "reserved", paymentId: "pay_1" },
        summary: { status: "succeeded", result: { charge: { paymentId: "pay_1" }, stock: { reserved: 1 }, mailed: true } },
      });
      expect(log.mock.calls.map((c) => c[0])).toEqual(["order 1: reserved, payment pay_1", 'summary: succeeded {"charge":{"paymentId":"pay_1"},"stock":{"reserved":1},"mailed":true}']);
    } finally {
      log.mockRestore();
    }
  });
});
