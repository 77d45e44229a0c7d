import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A smoke run of the benchmark (dist/bench/run.js, built by `npm test`): a few hundred tasks, a few
 * scenarios, on the test PostgreSQL. It checks only that the run works and that its output is
 * well formed: benchmarks are not tests, and nothing here looks at a timing.
 */
describe("benchmark smoke run", () => {
  it("emits one well-formed JSON line per result and writes a results file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ormq-bench-smoke-"));
    const resultsFile = join(dir, "RESULTS.md");
    try {
      const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
        // The test run's servers: MariaDB's when the run has one (ORMQ_SYSTEM_TESTS), not one of its own.
        const mariadb = process.env.ORMQ_TEST_MARIADB_URL;
        const databases = mariadb ? "postgres,sqlite,mariadb" : "postgres,sqlite";
        const child = spawn(process.execPath, [join(__dirname, "..", "dist", "bench", "run.js"), "--only", "enqueue,drain,latency,ceiling,others", "--databases", databases], {
          env: {
            ...process.env,
            ORMQ_BENCH_PG_URL: process.env.ORMQ_TEST_PG_URL,
            ...(mariadb ? { ORMQ_BENCH_MARIADB_URL: mariadb } : {}),
            ORMQ_BENCH_TASKS: "300",
            ORMQ_BENCH_SAMPLES: "10",
            // One round of the head-to-head: each of its drains in a process of its own.
            ORMQ_BENCH_ROUNDS: "1",
            // The other suites keep the machine busy: a drain here never waits for it to be quiet.
            ORMQ_BENCH_QUIET_MS: "0",
            ORMQ_BENCH_RESULTS: resultsFile,
          },
          stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        let err = "";
        child.stdout.on("data", (d) => (out += d));
        child.stderr.on("data", (d) => (err += d));
        child.on("error", reject);
        child.on("exit", (c) => resolve({ code: c, stdout: out, stderr: err }));
      });
      expect({ code, stderr: code === 0 ? "" : stderr }).toEqual({ code: 0, stderr: "" });
      const results = stdout
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      const seen = new Set(results.map((r) => `${r.scenario}/${r.database}`));
      const mariadbKeys = process.env.ORMQ_TEST_MARIADB_URL ? ["enqueue/mariadb", "drain/mariadb", "latency/mariadb", "head-to-head/mariadb"] : [];
      const headToHead = ["head-to-head/postgres", "head-to-head/postgres (graphile-worker)", "head-to-head/sqlite", "head-to-head/sqlite (plainjob)"];
      for (const key of ["enqueue/sqlite", "enqueue/postgres", "drain/sqlite", "drain/postgres", "latency/sqlite", "latency/postgres", "ceiling/postgres", ...headToHead, ...mariadbKeys]) {
        expect(seen).toContain(key);
      }
      for (const r of results) {
        expect(r).toEqual(expect.objectContaining({ benchmark: "ormq", scenario: expect.any(String), database: expect.any(String), variant: expect.any(String), tasks: expect.any(Number) }));
        const figures = ["tasksPerSecond", "p50", "p95", "p99"].filter((k) => k in r).map((k) => r[k]);
        expect(figures.length).toBeGreaterThan(0);
        for (const f of figures) expect(Number.isFinite(f)).toBe(true);
      }
      const written = readFileSync(resultsFile, "utf8");
      expect(written).toContain("# ormq benchmark results");
      expect(written).toContain("| scenario | database |");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
