/**
 * What a wake-up says: "work", tasks may be ready (an enqueue, a task back in the queue, a stop);
 * "room", a slot or the budget of unwritten outcomes freed up. A loop asleep because nothing was
 * ready has no use for room: a task that finishes on an idle worker does not send it to the
 * database for an empty claim (and its next-due read), three round trips that each enqueue paid.
 */
export type WakeKind = "work" | "room";

/**
 * The claim loop's sleep: until a timeout, or until woken. A wake-up that comes while nobody
 * sleeps is kept, so the next sleep returns at once (nothing announced between a look at the queue
 * and the sleep after it is missed).
 */
export class Doze {
  private kept: WakeKind | null = null;
  private sleeper: { wakeOnRoom: boolean; wake: () => void } | undefined;

  wake(kind: WakeKind = "work"): void {
    if (this.sleeper) {
      if (kind === "work" || this.sleeper.wakeOnRoom) this.sleeper.wake();
    } else if (this.kept !== "work") {
      this.kept = kind;
    }
  }

  /** A wake-up came since the last sleep or forget(), and is kept for the next sleep. */
  get pending(): boolean {
    return this.kept !== null;
  }

  /** Drops a kept wake-up: the caller is about to look anyway. */
  forget(): void {
    this.kept = null;
  }

  /** Sleeps `ms`, or until woken: by any wake-up with `wakeOnRoom`, else by "work" only. */
  sleep(ms: number, wakeOnRoom = true): Promise<void> {
    const kept = this.kept;
    this.kept = null;
    if (kept === "work" || (kept === "room" && wakeOnRoom)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.sleeper = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleeper = { wakeOnRoom, wake: done };
    });
  }
}
