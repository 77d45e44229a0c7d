import { OrmqInit1763900000000 } from "./1763900000000-OrmqInit";

/** ormq's migrations, in order, to spread into a DataSource's `migrations`. */
export const ormqMigrations = [OrmqInit1763900000000];
