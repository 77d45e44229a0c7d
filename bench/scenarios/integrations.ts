/**
 * Issue 29's costs. OpenTelemetry: the same drain at the defaults without ormq/opentelemetry,
 * with it and no SDK registered (the target: at most 2% slower), and with an SDK tracer that
 * records every span; alternating, three rounds, medians.
 */
import type { Databases, DatabaseName, Result } from "../common";
import { drain, type DrainSettings } from "./drain";

export async function otelCost(databases: Databases, database: DatabaseName, tasks: number): Promise<Result[]> {
  const sides: [string, DrainSettings][] = [
    ["plain", { history: true }],
    ["api", { history: true, otel: "api" }],
    ["sdk", { history: true, otel: "sdk" }],
  ];
  const runs = new Map<string, Result[]>(sides.map(([name]) => [name, []]));
  for (let i = 0; i < 3; i++) {
    for (const [name, settings] of i % 2 === 0 ? sides : [...sides].reverse()) runs.get(name)!.push(await drain(databases, database, tasks, settings, "opentelemetry"));
  }
  const medians = new Map<string, Result>();
  for (const [name, list] of runs) {
    const sorted = [...list].sort((a, b) => a.tasksPerSecond! - b.tasksPerSecond!);
    medians.set(name, { ...sorted[1], variant: `${sorted[1].variant}; median of 3, alternating (${sorted.map((r) => r.tasksPerSecond).join(", ")})` });
  }
  const plain = medians.get("plain")!.tasksPerSecond!;
  return [...medians.entries()].map(([name, r]) => (name === "plain" ? r : { ...r, variant: `${r.variant}; ${(r.tasksPerSecond! / plain).toFixed(3)}x of the same drain without it` }));
}
