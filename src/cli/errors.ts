import { OrmqError } from "../errors";

/** A command failed in a way the user can act on: printed as one line, exit code 1. */
export class CliError extends OrmqError {}
