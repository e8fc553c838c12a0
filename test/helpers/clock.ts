/**
 * A Clock (src/util/time.ts) the test moves by hand: `now()` is what the test says, and a delay
 * resolves when `advance` passes its deadline (or at once when its signal aborts), so rate limits and
 * cooldowns are tested without sleeping.
 */
import type { Clock } from '../../src/util/time.js';

export class ManualClock implements Clock {
  t = 0;
  private waits: Array<{ at: number; resolve: () => void }> = [];
  now(): number {
    return this.t;
  }
  delay(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const w = { at: this.t + ms, resolve };
      this.waits.push(w);
      signal?.addEventListener(
        'abort',
        () => {
          this.waits = this.waits.filter((x) => x !== w);
          resolve();
        },
        { once: true },
      );
    });
  }
  /** Moves time on by `ms`, resolves the delays now due, and lets their continuations run. */
  async advance(ms: number): Promise<void> {
    this.t += ms;
    const due = this.waits.filter((w) => w.at <= this.t);
    this.waits = this.waits.filter((w) => w.at > this.t);
    for (const w of due) w.resolve();
    await new Promise((r) => setImmediate(r));
  }
  /** Delays still waiting. */
  pending(): number {
    return this.waits.length;
  }
}
