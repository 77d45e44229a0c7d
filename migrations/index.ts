import { OrmqInit1763900000000 } from "./1763900000000-OrmqInit";
import { OrmqUniqueTasks1764500000000 } from "./1764500000000-OrmqUniqueTasks";
import { OrmqFlowControl1764600000000 } from "./1764600000000-OrmqFlowControl";
import { OrmqSchedules1764700000000 } from "./1764700000000-OrmqSchedules";
import { OrmqAttemptStarts1764800000000 } from "./1764800000000-OrmqAttemptStarts";
import { OrmqWorkflows1764900000000 } from "./1764900000000-OrmqWorkflows";
import { OrmqIntegrations1765100000000 } from "./1765100000000-OrmqIntegrations";

/** ormq's migrations, in order, to spread into a DataSource's `migrations`. */
export const ormqMigrations = [OrmqInit1763900000000, OrmqUniqueTasks1764500000000, OrmqFlowControl1764600000000, OrmqSchedules1764700000000, OrmqAttemptStarts1764800000000, OrmqWorkflows1764900000000, OrmqIntegrations1765100000000];
