/**
 * The one place that picks a dialect (src/dialect/index.ts): from a database URL (the options
 * `ormqDataSourceOptions` builds) and from a DataSource's driver; and the file an embedded
 * database lives in. No other module branches on the database.
 */
import { DataSource } from "typeorm";
import { ormqDataSourceOptions } from "../src";
import { databaseFileOf } from "../src/config";
import { contractOf } from "../src/dialect";

describe("choosing the dialect", () => {
  it("a postgres:// or postgresql:// URL is PostgreSQL; a path or sqlite: URL is a SQLite file (with WAL); another scheme is refused", () => {
    expect(ormqDataSourceOptions("postgres://u:p@h/db")).toMatchObject({ type: "postgres", url: "postgres://u:p@h/db" });
    expect(ormqDataSourceOptions("postgresql://h/db")).toMatchObject({ type: "postgres" });
    expect(ormqDataSourceOptions("./app.sqlite")).toMatchObject({ type: "better-sqlite3", database: "./app.sqlite", enableWAL: true });
    expect(ormqDataSourceOptions("sqlite://data/x.db")).toMatchObject({ type: "better-sqlite3", database: "data/x.db" });
    expect(ormqDataSourceOptions("C:\\data\\app.sqlite")).toMatchObject({ type: "better-sqlite3", database: "C:\\data\\app.sqlite" });
    // Not a file named "mysql://h/db" (MySQL is not served yet: docs/mysql.md).
    for (const url of ["mysql://u@h/db", "mariadb://h/db", "redis://h"]) expect(() => ormqDataSourceOptions(url)).toThrow(`no ormq dialect serves the database URL "${url}"`);
    expect(() => ormqDataSourceOptions("mysql://app:s3cret@h/db")).toThrow('no ormq dialect serves the database URL "mysql://app:***@h/db"');
    for (const url of ["postgres://h/db", "./a.sqlite"]) {
      const options = ormqDataSourceOptions(url);
      expect(options.entities).toBeDefined();
      expect(options.subscribers).toBeDefined();
      expect(options.migrations).toBeDefined();
    }
  });

  it("the file of an embedded database, and none for a server or :memory:", () => {
    expect(databaseFileOf(ormqDataSourceOptions("./a.sqlite"))).toBe("./a.sqlite");
    expect(databaseFileOf(ormqDataSourceOptions("postgres://h/db"))).toBeNull();
    expect(databaseFileOf({ type: "better-sqlite3", database: ":memory:" })).toBeNull();
  });

  it("a DataSource of another driver is refused with the drivers ormq supports", () => {
    // (TypeORM cannot build a MySQL DataSource without mysql2 installed: only its options are read.)
    const ds = { options: { type: "mysql" } } as unknown as DataSource;
    expect(() => contractOf(ds)).toThrow('ormq supports the "postgres" and "better-sqlite3" drivers, not "mysql"');
    expect(contractOf(new DataSource(ormqDataSourceOptions("postgres://h/db"))).name).toBe("postgres");
    expect(contractOf(new DataSource(ormqDataSourceOptions("./a.sqlite"))).name).toBe("sqlite");
  });
});
