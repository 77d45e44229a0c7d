/**
 * The settings table in docs/workers.md is generated from the settings tables: this fails when the
 * page differs. `ORMQ_WRITE_DOCS=1 npx jest tests/settingsDoc.test.ts` rewrites it instead.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { settingsMarkdown } from "../src/cli/workerCommand/flags";

const PAGE = join(__dirname, "..", "docs", "workers.md");
const START = /<!-- settings table: [^\n]*-->\n/;
const END = "<!-- end of the settings table -->";

describe("docs/workers.md", () => {
  it("holds the settings table generated from src/worker/settings.ts and src/cli/workerCommand/flags.ts", () => {
    const page = readFileSync(PAGE, "utf8");
    const start = START.exec(page);
    const end = page.indexOf(END);
    expect(start).not.toBeNull();
    expect(end).toBeGreaterThan(start!.index);
    const from = start!.index + start![0].length;
    const inPage = page.slice(from, end);
    const generated = settingsMarkdown();
    if (process.env.ORMQ_WRITE_DOCS === "1" && inPage !== generated) writeFileSync(PAGE, page.slice(0, from) + generated + page.slice(end));
    else expect(inPage).toBe(generated);
  });
});
