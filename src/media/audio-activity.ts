/**
 * Sound bursts in the sampled 16 kHz audio, by energy: an onset when 20 ms frames at or above
 * `onRms` add up to `minBurstMs`, an offset once `endSilenceMs` of frames below it follow. The
 * content-aware cycles make a cycle due at each offset (`trigger: "speech_end"`), so a record follows
 * an utterance instead of the clock. Energy cannot tell speech from a tone or a door slam, and does
 * not try: any burst loud and long enough counts.
 *
 * Promises: pure (timestamps come from the chunks; no clock), O(samples) per push, constant memory;
 * a burst shorter than `minBurstMs` produces no event; each onset is followed by at most one offset.
 */

export interface AudioActivityOptions {
  /** Frame RMS at or above this is "sound". */
  onRms: number;
  /** Quiet this long ends a burst. */
  endSilenceMs: number;
  /** Sound adding up to this long (gaps shorter than endSilenceMs allowed) makes a burst. */
  minBurstMs?: number;
  sampleRate?: number;
}

export type AudioActivityEvent =
  | { kind: 'onset'; ptsMs: number }
  /** `ptsMs`: when the end was confirmed (after endSilenceMs of quiet); the burst spanned start..end. */
  | { kind: 'offset'; ptsMs: number; startPtsMs: number; endPtsMs: number };

const FRAME_MS = 20;
const DEFAULT_MIN_BURST_MS = 200;

export class AudioActivity {
  private o: Required<AudioActivityOptions>;
  private frameLen: number;
  private acc = 0;
  private accN = 0;
  private accStartMs: number | undefined;
  private state: 'quiet' | 'candidate' | 'active' = 'quiet';
  private loudMs = 0;
  private quietMs = 0;
  private burstStartMs = 0;
  private lastLoudEndMs = 0;

  constructor(opts: AudioActivityOptions) {
    this.o = { minBurstMs: DEFAULT_MIN_BURST_MS, sampleRate: 16000, ...opts };
    this.frameLen = Math.round((this.o.sampleRate * FRAME_MS) / 1000);
  }

  get active(): boolean {
    return this.state === 'active';
  }

  setOptions(opts: Partial<AudioActivityOptions>): void {
    this.o = { ...this.o, ...opts };
  }

  /** Forget the current burst (timeline discontinuity, mode switched off). */
  reset(): void {
    this.acc = 0;
    this.accN = 0;
    this.accStartMs = undefined;
    this.state = 'quiet';
    this.loudMs = 0;
    this.quietMs = 0;
  }

  push(startPtsMs: number, samples: Float32Array): AudioActivityEvent[] {
    const events: AudioActivityEvent[] = [];
    const msPerSample = 1000 / this.o.sampleRate;
    for (let i = 0; i < samples.length; i++) {
      if (this.accN === 0) this.accStartMs = startPtsMs + i * msPerSample;
      const s = samples[i]!;
      this.acc += s * s;
      this.accN++;
      if (this.accN === this.frameLen) {
        this.frame(Math.sqrt(this.acc / this.accN), this.accStartMs!, events);
        this.acc = 0;
        this.accN = 0;
      }
    }
    return events;
  }

  private frame(level: number, startMs: number, events: AudioActivityEvent[]): void {
    const endMs = startMs + FRAME_MS;
    const loud = level >= this.o.onRms;
    if (loud) {
      if (this.state === 'quiet') {
        this.state = 'candidate';
        this.burstStartMs = startMs;
        this.loudMs = 0;
      }
      this.loudMs += FRAME_MS;
      this.quietMs = 0;
      this.lastLoudEndMs = endMs;
      if (this.state === 'candidate' && this.loudMs >= this.o.minBurstMs) {
        this.state = 'active';
        events.push({ kind: 'onset', ptsMs: this.burstStartMs });
      }
      return;
    }
    if (this.state === 'quiet') return;
    this.quietMs += FRAME_MS;
    if (this.quietMs < this.o.endSilenceMs) return;
    if (this.state === 'active') events.push({ kind: 'offset', ptsMs: endMs, startPtsMs: this.burstStartMs, endPtsMs: this.lastLoudEndMs });
    this.state = 'quiet';
    this.loudMs = 0;
    this.quietMs = 0;
  }
}
