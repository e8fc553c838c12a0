/**
 * Cycle scheduling on stream time. The media's presentation timestamps, not the wall clock, say when
 * a cycle is due: a stream fed faster or slower than real time still gets one cycle per
 * `generate_every_s` of media. The scheduler only says "due"; whether a cycle can run (one in flight
 * per stream, buffers not empty) is the session's call.
 */

export interface SchedulerOptions {
  intervalMs: number;
  /**
   * Called when stream time reaches a due point; `ptsMs` is the stream time that triggered it and
   * `count` how many due points it passed at once (more than 1 only when stream time leapt).
   */
  onDue: (ptsMs: number, count: number) => void;
  /**
   * A pts step larger than this (backwards, or forwards by many intervals) is a discontinuity
   * (input restarted, timestamps reset); the schedule re-anchors instead of firing a burst.
   */
  discontinuityMs?: number;
  /**
   * How far behind stream time a timestamp may be and still count as ordinary A/V interleaving.
   * Anything further back is a reset: an input that restarts its timestamps a few seconds back would
   * otherwise freeze stream time (and every cycle) until it caught up again.
   */
  backwardToleranceMs?: number;
}

export class StreamTimeScheduler {
  private intervalMs: number;
  private readonly onDue: (ptsMs: number, count: number) => void;
  private readonly discontinuityMs: number;
  private readonly backwardToleranceMs: number;
  /** Stream time of the last due point (or the anchor before the first). */
  private lastDueMs: number | undefined;
  private nowMs: number | undefined;

  constructor(opts: SchedulerOptions) {
    this.intervalMs = opts.intervalMs;
    this.onDue = opts.onDue;
    this.discontinuityMs = opts.discontinuityMs ?? 10_000;
    this.backwardToleranceMs = Math.min(opts.backwardToleranceMs ?? 3_000, this.discontinuityMs);
  }

  get streamTimeMs(): number | undefined {
    return this.nowMs;
  }

  get nextDueMs(): number | undefined {
    return this.lastDueMs === undefined ? undefined : this.lastDueMs + this.intervalMs;
  }

  /** Feed every media timestamp seen (frame pts, audio chunk end). */
  observe(ptsMs: number): void {
    if (!Number.isFinite(ptsMs)) return;
    if (this.nowMs === undefined || this.lastDueMs === undefined) {
      this.nowMs = ptsMs;
      this.lastDueMs = ptsMs;
      return;
    }
    if (ptsMs < this.nowMs - this.backwardToleranceMs || ptsMs > this.nowMs + Math.max(this.discontinuityMs, 4 * this.intervalMs)) {
      this.nowMs = ptsMs;
      this.lastDueMs = ptsMs;
      return;
    }
    // Frames and audio interleave slightly out of order; stream time only moves forward.
    if (ptsMs <= this.nowMs) return;
    this.nowMs = ptsMs;
    this.check();
  }

  /** A cadence change takes effect now: the next due point is re-derived from the last one. */
  setInterval(intervalMs: number): void {
    this.intervalMs = intervalMs;
    this.check();
  }

  private check(): void {
    if (this.nowMs === undefined || this.lastDueMs === undefined) return;
    if (this.nowMs < this.lastDueMs + this.intervalMs) return;
    const steps = Math.floor((this.nowMs - this.lastDueMs) / this.intervalMs);
    this.lastDueMs += steps * this.intervalMs;
    this.onDue(this.nowMs, steps);
  }
}
