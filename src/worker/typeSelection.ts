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
    // (That a thread class names its module is checked with the class, by the registry.)
    if (t.cls.executor !== "thread") continue;
    if (!options.bootstrap) {
      throw new OrmqConfigurationError(
        `${t.cls.name} runs in a thread: give the worker a bootstrap module (option \`bootstrap\`, --bootstrap or ORMQ_BOOTSTRAP) that exports the thread's DataSource`,
      );
    }
  }
  return types;
}
