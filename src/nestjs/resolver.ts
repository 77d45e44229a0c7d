/**
 * How a task's `ctx.resolve(Service)` reaches Nest's injector: a default-scoped (singleton)
 * provider of any module of the application. Request- and transient-scoped providers are refused
 * with an error that says why: an attempt runs outside any HTTP request, so there is no request
 * for them to belong to, and building a fresh instance per call would hide that.
 */
import type { ModuleRef } from "@nestjs/core";
import { OrmqConfigurationError } from "../errors";

/** The resolver a worker under Nest gives its tasks' contexts (WorkerOptions.resolver). */
export function nestResolver(moduleRef: Pick<ModuleRef, "get">): (token: unknown) => unknown {
  return (token) => {
    try {
      return moduleRef.get(token as never, { strict: false });
    } catch (err) {
      const name = tokenName(token);
      const kind = (err as { constructor?: { name?: string } } | null)?.constructor?.name;
      if (kind === "InvalidClassScopeException") {
        throw new OrmqConfigurationError(
          `ctx.resolve(${name}): ${name} is a request- or transient-scoped provider; a task runs outside any request, so only default-scoped (singleton) providers can be resolved: make it one, or give the task what it needs in its columns`,
          { cause: err },
        );
      }
      if (kind === "UnknownElementException") {
        throw new OrmqConfigurationError(`ctx.resolve(${name}): no provider ${name} in the Nest application (add it to a module's providers)`, { cause: err });
      }
      throw err;
    }
  };
}

function tokenName(token: unknown): string {
  if (typeof token === "function") return token.name || "(anonymous class)";
  return String(token);
}
