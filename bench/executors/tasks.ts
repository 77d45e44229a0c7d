/**
 * The executors scenario's no-op tasks: one per place run() can run. Thread and process tasks are
 * loaded there from this compiled module (`static module`), with bench/executors/bootstrap.ts.
 */
import "reflect-metadata";
import { ChildEntity } from "typeorm";
import { BaseTaskEntity } from "../../src";

@ChildEntity("bench_exec_async")
export class AsyncNoop extends BaseTaskEntity {
  static history = false;
  async run() {}
}

@ChildEntity("bench_exec_thread")
export class ThreadNoop extends BaseTaskEntity {
  static history = false;
  static executor = "thread" as const;
  static module = __filename;
  async run() {}
}

@ChildEntity("bench_exec_process")
export class ProcessNoop extends BaseTaskEntity {
  static history = false;
  static executor = "process" as const;
  static module = __filename;
  async run() {}
}

export const executorEntities = [AsyncNoop, ThreadNoop, ProcessNoop];
