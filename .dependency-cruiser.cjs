/**
 * The import rules that keep ormq's structure, checked by `npm test` (npm run depcheck). See
 * docs/architecture.md for the rooms these name.
 */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "No import cycles: each room stands above what it imports.",
      from: { path: "^(src|entities|migrations)/" },
      to: { circular: true },
    },
    {
      name: "entities-stay-at-the-bottom",
      severity: "error",
      comment:
        "Entities hold columns, statics and setters. At run time they import only pure modules (errors, value checks, retry maths, text bounds); entity methods that need the database go through entities/operations.ts, which the entry point fills.",
      from: { path: "^entities/" },
      to: {
        path: "^src/",
        pathNot: "^src/(errors/|validation\\.ts|retry/|storable\\.ts)",
        dependencyTypesNot: ["type-only"],
      },
    },
    {
      name: "drivers-only-in-the-dialect",
      severity: "error",
      comment: "Only the dialect layer (and the migrations) talk to a database driver directly.",
      from: { path: "^(src|entities)/", pathNot: "^src/dialect/" },
      to: { path: "node_modules/(pg|better-sqlite3|pg-pool)/" },
    },
    {
      name: "dialect-internals-stay-inside",
      severity: "error",
      comment:
        "Outside src/dialect/, a dialect is reached through its contract and index.ts (and the statement modules beside them), never through postgres/ or sqlite/ directly.",
      from: { path: "^(src|entities)/", pathNot: "^src/dialect/" },
      to: { path: "^src/dialect/(postgres|sqlite)/" },
    },
    {
      name: "cli-uses-the-api",
      severity: "error",
      comment: "The CLI uses the public API, the admin functions and the read-only query module, not the worker's dialect.",
      from: { path: "^src/cli/" },
      to: { path: "^src/dialect/", pathNot: "^src/dialect/taskReads\\.ts$" },
    },
    {
      name: "the-root-entry-is-small",
      severity: "error",
      comment:
        "`ormq` holds what a user defines, enqueues, runs and waits with: it does not load the operators' functions (ormq/admin), the dashboard, the metrics (prom-client) or the test helpers, not even through another module.",
      from: { path: "^src/index\\.ts$" },
      to: { path: "^src/(admin|dashboard|testing|cli|nestjs|opentelemetry)/|^src/metrics\\.ts$", reachable: true },
    },
    {
      name: "optional-integrations-stay-in-their-entry",
      severity: "error",
      comment:
        "NestJS and OpenTelemetry are optional peer dependencies: only ormq/nestjs and ormq/opentelemetry import them, so a user without them never loads them.",
      from: { path: "^(src|entities|migrations)/", pathNot: "^src/(nestjs|opentelemetry)/" },
      to: { path: "node_modules/@(nestjs|opentelemetry)/" },
    },
    {
      name: "no-orphans-in-src",
      severity: "error",
      comment: "A module nothing imports is dead code (the entry points excepted).",
      from: { orphan: true, path: "^src/", pathNot: ["^src/index\\.ts$", "^src/(admin|testing|nestjs|opentelemetry)/index\\.ts$", "^src/metrics\\.ts$", "^src/cli/main\\.ts$", "^src/worker/threads/thread\\.ts$", "\\.d\\.ts$"] },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    exclude: { path: "^(dist|tests|bench|examples)/" },
  },
};
