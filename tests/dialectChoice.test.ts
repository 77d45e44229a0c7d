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
  it("a postgres:// or postgresql:// URL is PostgreSQL; mysql:// and mariadb:// are MySQL (mysql2); a path or sqlite: URL is a SQLite file (with WAL); another scheme is refused", () => {
    expect(ormqDataSourceOptions("postgres://u:p@h/db")).toMatchObject({ type: "postgres", url: "postgres://u:p@h/db" });
    expect(ormqDataSourceOptions("postgresql://h/db")).toMatchObject({ type: "postgres" });
    expect(ormqDataSourceOptions("./app.sqlite")).toMatchObject({ type: "better-sqlite3", database: "./app.sqlite", enableWAL: true });
    expect(ormqDataSourceOptions("sqlite://data/x.db")).toMatchObject({ type: "better-sqlite3", database: "data/x.db" });
    expect(ormqDataSourceOptions("C:\\data\\app.sqlite")).toMatchObject({ type: "better-sqlite3", database: "C:\\data\\app.sqlite" });
    expect(ormqDataSourceOptions("mysql://u@h/db")).toMatchObject({ type: "mysql", url: "mysql://u@h/db", connectorPackage: "mysql2", bigNumberStrings: true });
    expect(ormqDataSourceOptions("mariadb://h/db")).toMatchObject({ type: "mariadb", url: "mariadb://h/db" });
    // Not a file named "redis://h".
    for (const url of ["redis://h", "mssql://h/db"]) expect(() => ormqDataSourceOptions(url)).toThrow(`no ormq dialect serves the database URL "${url}"`);
    expect(() => ormqDataSourceOptions("mssql://app:s3cret@h/db")).toThrow('no ormq dialect serves the database URL "mssql://app:***@h/db"');
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
    // (Only the options are read: no driver is loaded.)
    const ds = { options: { type: "mssql" } } as unknown as DataSource;
    expect(() => contractOf(ds)).toThrow('ormq supports the "postgres", "mysql", "mariadb" and "better-sqlite3" drivers, not "mssql"');
    expect(contractOf({ options: { type: "mariadb" } } as unknown as DataSource).name).toBe("mysql");
    expect(contractOf(new DataSource(ormqDataSourceOptions("postgres://h/db"))).name).toBe("postgres");
    expect(contractOf(new DataSource(ormqDataSourceOptions("./a.sqlite"))).name).toBe("sqlite");
  });
});
