/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/tests"],
  testMatch: ["**/*.test.ts"],
  // Transpiled file by file (tsconfig's isolatedModules): `npm run typecheck` checks the tests and
  // the code they import, once.
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json" }] },
  // One embedded PostgreSQL for the whole run (or ORMQ_TEST_PG_URL when set).
  globalSetup: "<rootDir>/tests/support/globalSetup.ts",
  globalTeardown: "<rootDir>/tests/support/globalTeardown.ts",
  testTimeout: 60_000,
  // Test files share one PostgreSQL server but each uses its own database. Three workers on two
  // cores: much of a test's time is spent waiting on child processes and the database servers
  // (the whole run, with ORMQ_SYSTEM_TESTS=1: 456 s at three, 492 s at two).
  maxWorkers: 3,
};
