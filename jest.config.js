/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: "node",
  roots: ["<rootDir>/tests"],
  testMatch: ["**/*.test.ts"],
  transform: { "^.+\\.ts$": ["ts-jest", { tsconfig: "tsconfig.json", isolatedModules: false }] },
  // One embedded PostgreSQL for the whole run (or ORMQ_TEST_PG_URL when set).
  globalSetup: "<rootDir>/tests/support/globalSetup.ts",
  globalTeardown: "<rootDir>/tests/support/globalTeardown.ts",
  testTimeout: 60_000,
  // Test files share one PostgreSQL server but each uses its own database.
  maxWorkers: 2,
};
