import { OrmqConfigurationError } from "../errors";
import type { TaskClass, TaskType } from "../registry";
import type { ResolvedOptions } from "./options";

/** The types this worker runs: the class's, narrowed by the `types` option. */
export function selectTypes(taskClass: TaskClass, all: TaskType[], options: Pick<ResolvedOptions, "types" | "bootstrap">): TaskType[] {
  const wanted = options.types;
  const types = wanted ? all.filter((t) => wanted.includes(t.key)) : all;
  const unknown = wanted?.filter((key) => !all.some((t) => t.key === key)) ?? [];
  if (unknown.length > 0) {
    throw new OrmqConfigurationError(
      `unknown task type${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} for ${taskClass.name}; known: ${all.map((t) => t.key).join(", ") || "none"}`,
    );
  }
  for (const t of types) {
    // (That a thread or process class names its module is checked with the class, by the registry.)
    if (t.cls.executor === "async") continue;
    if (!options.bootstrap) {
      throw new OrmqConfigurationError(
        `${t.cls.name} runs in a ${t.cls.executor}: give the worker a bootstrap module (option \`bootstrap\`, --bootstrap or ORMQ_BOOTSTRAP) that exports the ${t.cls.executor}'s DataSource`,
      );
    }
  }
  return types;
}
