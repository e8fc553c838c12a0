/**
 * Cycle scheduling on stream time. The media's presentation timestamps, not the wall clock, say when
 * a cycle is due: a stream fed faster or slower than real time still gets one cycle per
 * `generate_every_s` of media. The scheduler only says "due"; whether a cycle can run (one in flight
 * per stream, buffers not empty) is the session's call; `CycleSlot` is the pure policy it uses.
 *
 * `breaksWindow(pts)` tells the session whether a timestamp starts a new timeline (a reset backwards,
 * or a forward leap past `discontinuityMs`), so the media buffers can be cleared before it goes in.
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
  /**
   * Last timestamp per track. Video and audio come from separate decoders and may lag each other by
   * seconds under load; a track is only "reset" when it goes back against its own previous timestamp.
   */
  private readonly lastByTrack = new Map<string, number>();

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

  /**
   * Whether media at `ptsMs` must not share a window with what came before: a jump backwards past
   * the interleaving tolerance, or forwards past `discontinuityMs`, whatever the cadence (the
   * schedule itself tolerates longer forward gaps when the interval is long; a window does not).
   */
  breaksWindow(ptsMs: number, track = 'media'): boolean {
    if (!Number.isFinite(ptsMs) || this.nowMs === undefined) return false;
    // A track's first timestamp cannot go back on itself (video may start seconds behind audio).
    const ref = this.lastByTrack.get(track) ?? Number.NEGATIVE_INFINITY;
    return ptsMs < ref - this.backwardToleranceMs || ptsMs > this.nowMs + this.discontinuityMs;
  }

  /** Feed every media timestamp seen (frame pts, audio chunk end), naming its track ('video', 'audio'). */
  observe(ptsMs: number, track = 'media'): void {
    if (!Number.isFinite(ptsMs)) return;
    if (this.nowMs === undefined || this.lastDueMs === undefined) {
      this.nowMs = ptsMs;
      this.lastDueMs = ptsMs;
      this.lastByTrack.set(track, ptsMs);
      return;
    }
    const ref = this.lastByTrack.get(track) ?? Number.NEGATIVE_INFINITY;
    if (ptsMs < ref - this.backwardToleranceMs || ptsMs > this.nowMs + Math.max(this.discontinuityMs, 4 * this.intervalMs)) {
      this.nowMs = ptsMs;
      this.lastDueMs = ptsMs;
      // The other tracks' first timestamps on the new timeline compare against the new stream time.
      this.lastByTrack.clear();
      this.lastByTrack.set(track, ptsMs);
      return;
    }
    this.lastByTrack.set(track, Math.max(ptsMs, this.lastByTrack.get(track) ?? ptsMs));
    // Frames and audio interleave slightly out of order; stream time only moves forward.
    if (ptsMs <= this.nowMs) return;
    this.nowMs = ptsMs;
    this.check();
  }

  /** A cycle ran early at stream time `ptsMs` (content-aware trigger): the next due point is an interval after it. */
  reanchor(ptsMs: number): void {
    if (this.lastDueMs !== undefined && Number.isFinite(ptsMs) && ptsMs > this.lastDueMs) this.lastDueMs = ptsMs;
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

/**
 * One cycle in flight per stream, with a catch-up of one. A due point that passes while a cycle runs
 * is kept (not counted as skipped) and runs as soon as that cycle finishes; only due points beyond
 * that one are skipped. Input that arrives in bursts (ffmpeg releases audio about once a second) makes
 * stream time cross two due points within moments; without the catch-up the second would always find
 * the first still running and every other cycle would be lost although the model keeps up.
 */
export class CycleSlot {
  private busy = false;
  private pending = false;

  get inFlight(): boolean {
    return this.busy;
  }

  get hasPending(): boolean {
    return this.pending;
  }

  /**
   * `count` due points passed at once. Returns whether to launch a cycle now and how many due points
   * are skipped (dropped for good).
   */
  due(count: number): { launch: boolean; skipped: number } {
    if (count <= 0) return { launch: false, skipped: 0 };
    if (!this.busy) return { launch: true, skipped: count - 1 };
    // Busy: the newest due point waits (replacing an older waiting one, which is then skipped).
    const skipped = count - 1 + (this.pending ? 1 : 0);
    this.pending = true;
    return { launch: false, skipped };
  }

  /** A cycle was launched (by `due` or by `finished`). */
  started(): void {
    this.busy = true;
  }

  /** The running cycle ended; returns whether the waiting due point should launch now. */
  finished(): boolean {
    this.busy = false;
    const run = this.pending;
    this.pending = false;
    return run;
  }

  /** Forget a waiting due point (stream ending, or a launch found nothing to do). */
  clearPending(): void {
    this.pending = false;
  }
}
