// ESLint with typescript-eslint's type-checked rules, run by `npm test` (npm run lint).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/** Calls that run SQL: only the dialect layer and the migrations make them (see below). */
const SQL_CALLS = [
  {
    selector: "CallExpression[callee.property.name=/^(query|createQueryBuilder)$/]",
    message: "SQL runs in src/dialect/ (or migrations/): add a statement to the dialect and call it from here.",
  },
];

/** Library internals: only src/dialect/libraryInternals.ts reaches them (see there). */
const LIBRARY_INTERNALS = [
  {
    selector: "MemberExpression[property.name=/^(master|transactionDepth|_clients|getInsertionReturningColumns|normalizeType)$/]",
    message: "TypeORM's and pg-pool's internals are reached through src/dialect/libraryInternals.ts only (each has a test there).",
  },
  {
    selector: "ImportDeclaration[importKind!='type'][source.value=/^typeorm\\u002F/]",
    message: "TypeORM's deep modules are reached through src/dialect/libraryInternals.ts only.",
  },
];

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "tests/**", "bench/**", "examples/**", "*.js", "*.mjs", "*.cjs"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // Tuned where they fight the code, each for a reason:
      // rows from the drivers are `any` by nature; each is converted where it is read.
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      // Fire-and-forget is deliberate where marked with `void`.
      "@typescript-eslint/no-floating-promises": ["error", { ignoreVoid: true }],
      // Methods passed as callbacks (handlers, listeners) are bound or arrow functions by design.
      "@typescript-eslint/unbound-method": "off",
      // Template literals format ids and numbers on purpose.
      "@typescript-eslint/restrict-template-expressions": "off",
      "@typescript-eslint/no-base-to-string": "off",
      // Interface methods that may be sync or async in implementations.
      "@typescript-eslint/require-await": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", caughtErrors: "none" }],
      "no-restricted-syntax": ["error", ...SQL_CALLS, ...LIBRARY_INTERNALS],
    },
  },
  {
    // The dialect layer and the migrations own every statement on ormq's tables.
    files: ["src/dialect/**/*.ts", "migrations/**/*.ts"],
    rules: { "no-restricted-syntax": ["error", ...LIBRARY_INTERNALS] },
  },
  {
    files: ["src/dialect/libraryInternals.ts"],
    rules: { "no-restricted-syntax": "off" },
  },
);
