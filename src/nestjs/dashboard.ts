/**
 * The dashboard as a Nest controller, behind the application's own guards:
 *
 *   @Module({ controllers: [OrmqDashboardController({ path: "ormq", guards: [AdminGuard] })] })
 *
 * Nest answers a request its guards refuse; one that reaches the controller is the guards' to
 * have allowed, so the dashboard's own authentication is a function that accepts it, with the
 * caller's identity (for the CSRF token of its actions) taken from `req.user` when a guard set it.
 */
import { All, Controller, Inject, Req, Res, UseGuards, type CanActivate, type Type } from "@nestjs/common";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { DataSource } from "typeorm";
import { ormqDashboard, type DashboardOptions } from "../dashboard";
import { OrmqConfigurationError } from "../errors";
import { ORMQ_DATA_SOURCE } from "./tokens";

/** Options of `OrmqDashboardController`. */
export interface NestDashboardOptions extends Omit<DashboardOptions, "dataSource" | "auth" | "basePath"> {
  /** The controller's path (default "ormq"). */
  path?: string;
  /** Guards (classes or instances) every dashboard request passes first: your authentication. */
  guards?: (Type<CanActivate> | CanActivate)[];
  /** The full path the dashboard answers under, when the application has a global prefix: "/api/ormq". Default: "/" + path. */
  basePath?: string;
  /** Who the caller is, for the actions' CSRF tokens (default: `req.user.id`, else one shared identity). */
  identity?: (req: IncomingMessage) => string;
}

/** A controller class serving the dashboard under `path`, behind `guards`. */
export function OrmqDashboardController(options: NestDashboardOptions = {}): Type<unknown> {
  const path = (options.path ?? "ormq").replace(/^\/+|\/+$/g, "");
  if (!/^[\w\-./]*$/.test(path)) throw new OrmqConfigurationError(`OrmqDashboardController: path must be a path such as "ormq", got ${JSON.stringify(options.path)}`);
  const { guards = [], identity = defaultIdentity, basePath = `/${path}`, ...dashboardOptions } = options;

  @Controller(path)
  @UseGuards(...guards)
  class DashboardController {
    private readonly handle: (req: IncomingMessage, res: ServerResponse) => void;

    constructor(@Inject(ORMQ_DATA_SOURCE) dataSource: DataSource) {
      this.handle = ormqDashboard({ ...dashboardOptions, dataSource, basePath, auth: (req) => identity(req) });
    }

    @All(["", "{*path}"])
    serve(@Req() req: IncomingMessage, @Res() res: ServerResponse): void {
      this.handle(req, res);
    }
  }
  return DashboardController;
}

function defaultIdentity(req: IncomingMessage): string {
  const user = (req as { user?: { id?: unknown } }).user;
  return user?.id !== undefined && user.id !== null ? String(user.id) : "nest";
}
