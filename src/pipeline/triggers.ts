/**
 * When an event (a scene cut, the end of a sound burst) makes a cycle due before the clock does, as a
 * pure policy on stream time: an event waits until stream time reaches both its own time and the last
 * cycle's start plus the minimum spacing; then a cycle is due until one launches. The launching cycle
 * covers every event seen so far, whatever made it launch, and is named after the earliest of them
 * (`trigger` in its records); with none pending it is an `interval` cycle.
 *
 * Promises: no clock and no I/O (times are arguments); at most one pending event (later ones merge
 * into it), so early cycles are never more frequent than one per minimum spacing.
 */
import type { CycleTrigger } from './records.js';

export type EventTrigger = Exclude<CycleTrigger, 'interval'>;

export type TriggerPoll =
  | { kind: 'none' }
  /** Not yet: the spacing since the last cycle's start ends at `atMs` (stream time). */
  | { kind: 'wait'; atMs: number; trigger: EventTrigger }
  | { kind: 'due'; trigger: EventTrigger; eventPtsMs: number };

export class TriggerPolicy {
  private minSpacingMs: number;
  private pending: { trigger: EventTrigger; ptsMs: number } | undefined;
  private lastLaunchMs: number | undefined;

  constructor(minSpacingMs: number) {
    this.minSpacingMs = minSpacingMs;
  }

  get pendingEvent(): { trigger: EventTrigger; ptsMs: number } | undefined {
    return this.pending ? { ...this.pending } : undefined;
  }

  setMinSpacing(ms: number): void {
    this.minSpacingMs = ms;
  }

  /** An event at stream time `ptsMs`; it merges into one already pending (the earliest names the cycle). */
  event(trigger: EventTrigger, ptsMs: number): void {
    if (!this.pending) this.pending = { trigger, ptsMs };
  }

  /** Whether the pending event makes a cycle due at stream time `nowMs`. */
  poll(nowMs: number): TriggerPoll {
    const p = this.pending;
    if (!p) return { kind: 'none' };
    const at = Math.max(p.ptsMs, this.lastLaunchMs === undefined ? Number.NEGATIVE_INFINITY : this.lastLaunchMs + this.minSpacingMs);
    if (nowMs >= at) return { kind: 'due', trigger: p.trigger, eventPtsMs: p.ptsMs };
    return { kind: 'wait', atMs: at, trigger: p.trigger };
  }

  /** A cycle starts at stream time `nowMs`: it covers the pending event, if any, and is named after it. */
  launched(nowMs: number): { trigger: CycleTrigger; eventPtsMs?: number } {
    this.lastLaunchMs = nowMs;
    const p = this.pending;
    this.pending = undefined;
    return p ? { trigger: p.trigger, eventPtsMs: p.ptsMs } : { trigger: 'interval' };
  }

  /** Forget everything (timeline discontinuity, mode switched off). */
  reset(): void {
    this.pending = undefined;
    this.lastLaunchMs = undefined;
  }
}
