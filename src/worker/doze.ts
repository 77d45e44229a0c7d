/**
 * The claim loop's sleep: until a timeout, or until woken. A wake-up that comes while nobody
 * sleeps is kept, so the next sleep returns at once (nothing announced between a look at the queue
 * and the sleep after it is missed).
 */
export class Doze {
  private woken = false;
  private wakeSleeper: (() => void) | undefined;

  wake(): void {
    if (this.wakeSleeper) this.wakeSleeper();
    else this.woken = true;
  }

  /** A wake-up came since the last sleep or forget(), and is kept for the next sleep. */
  get pending(): boolean {
    return this.woken;
  }

  /** Drops a kept wake-up: the caller is about to look anyway. */
  forget(): void {
    this.woken = false;
  }

  sleep(ms: number): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakeSleeper = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeSleeper = done;
    });
  }
}
