/**
 * Rolling media buffers for one stream: the newest `max_frames` sampled frames and the newest
 * `audio_window_s` of 16 kHz audio. Both are bounded by construction (frame count; sample count),
 * and both are snapshots-on-read so a running cycle never sees later media.
 *
 * Both also age out by STREAM time (`prune(nowMs, maxAgeMs)`): media older than the window, or ahead
 * of stream time (left over from before a backwards timestamp reset), is dropped, so an audio-only
 * stretch stops carrying the last video frames and a video-only one stops replaying old audio. On a
 * discontinuity the loop clears both (`clear()`), so a window never spans one. Time is always an
 * argument; nothing here reads a clock. `MediaWindow` is the pair as the loop uses it, sized and aged
 * by the stream params in force.
 */
import type { StreamParams } from '../config/params.js';
import { AUDIO_SAMPLE_RATE, type AudioChunk, type SampledFrame } from '../media/types.js';

/** Re-exported for the cycle code: the one 16 kHz constant is the media layer's. */
export { AUDIO_SAMPLE_RATE };

export class FrameBuffer {
  private frames: SampledFrame[] = [];
  private cap: number;
  /** Frames pushed out by newer ones (the buffer is a window, so this is normal, not a loss). */
  evicted = 0;

  constructor(maxFrames: number) {
    this.cap = Math.max(1, Math.floor(maxFrames));
  }

  get size(): number {
    return this.frames.length;
  }

  get capacity(): number {
    return this.cap;
  }

  push(frame: SampledFrame): void {
    // Sampler output is pts-ordered; an out-of-order frame (decoder restart) still goes last so the
    // "newest" frame is always the one that arrived last.
    this.frames.push(frame);
    this.trim();
  }

  resize(maxFrames: number): void {
    this.cap = Math.max(1, Math.floor(maxFrames));
    this.trim();
  }

  /** Puts `frame` in the newest frame's place: a near-duplicate of it (content-aware cycles) keeps one slot, fresh. */
  replaceNewest(frame: SampledFrame): void {
    if (this.frames.length === 0) this.frames.push(frame);
    else this.frames[this.frames.length - 1] = frame;
  }

  /** Oldest first. */
  snapshot(): SampledFrame[] {
    return this.frames.slice();
  }

  clear(): void {
    this.frames = [];
  }

  /** Drops frames older than `maxAgeMs` before stream time `nowMs`, or later than it; returns how many. */
  prune(nowMs: number, maxAgeMs: number): number {
    const before = this.frames.length;
    this.frames = this.frames.filter((f) => f.ptsMs >= nowMs - maxAgeMs && f.ptsMs <= nowMs);
    return before - this.frames.length;
  }

  private trim(): void {
    const excess = this.frames.length - this.cap;
    if (excess > 0) {
      this.frames.splice(0, excess);
      this.evicted += excess;
    }
  }
}

interface StoredChunk {
  startPtsMs: number;
  samples: Float32Array;
}

export interface AudioWindow {
  startPtsMs: number;
  endPtsMs: number;
  samples: Float32Array;
}

export class AudioBuffer {
  private chunks: StoredChunk[] = [];
  private total = 0;
  private capSamples: number;

  constructor(windowS: number) {
    this.capSamples = Math.max(1, Math.round(windowS * AUDIO_SAMPLE_RATE));
  }

  get durationMs(): number {
    return (this.total / AUDIO_SAMPLE_RATE) * 1000;
  }

  push(chunk: AudioChunk): void {
    if (chunk.samples.length === 0) return;
    this.chunks.push({ startPtsMs: chunk.startPtsMs, samples: chunk.samples });
    this.total += chunk.samples.length;
    this.trim();
  }

  resize(windowS: number): void {
    this.capSamples = Math.max(1, Math.round(windowS * AUDIO_SAMPLE_RATE));
    this.trim();
  }

  clear(): void {
    this.chunks = [];
    this.total = 0;
  }

  /**
   * Drops chunks that ended more than `maxAgeMs` before stream time `nowMs`, or start after it
   * (a chunk straddling the cut stays whole: the window is trimmed by size anyway).
   */
  prune(nowMs: number, maxAgeMs: number): void {
    // 1 ms of slack: a chunk's end is computed in floating point from its sample count.
    const keep = this.chunks.filter((c) => {
      const end = c.startPtsMs + (c.samples.length / AUDIO_SAMPLE_RATE) * 1000;
      return end >= nowMs - maxAgeMs && c.startPtsMs <= nowMs + 1;
    });
    if (keep.length === this.chunks.length) return;
    this.chunks = keep;
    this.total = keep.reduce((n, c) => n + c.samples.length, 0);
  }

  /**
   * The buffered audio as one contiguous clip. Gaps between chunks are not filled: the model hears
   * the samples back to back, and the window's start is derived from the newest chunk's end so that
   * `end - start` always equals the clip's duration.
   */
  snapshot(): AudioWindow | undefined {
    if (this.total === 0) return undefined;
    const out = new Float32Array(this.total);
    let off = 0;
    for (const c of this.chunks) {
      out.set(c.samples, off);
      off += c.samples.length;
    }
    const last = this.chunks[this.chunks.length - 1]!;
    const endPtsMs = last.startPtsMs + (last.samples.length / AUDIO_SAMPLE_RATE) * 1000;
    return { startPtsMs: endPtsMs - (this.total / AUDIO_SAMPLE_RATE) * 1000, endPtsMs, samples: out };
  }

  private trim(): void {
    let excess = this.total - this.capSamples;
    while (excess > 0 && this.chunks.length > 0) {
      const head = this.chunks[0]!;
      if (head.samples.length <= excess) {
        this.chunks.shift();
        this.total -= head.samples.length;
        excess -= head.samples.length;
      } else {
        // Keep a view, not a copy: the chunk's buffer is freed once the view is trimmed away too.
        this.chunks[0] = {
          startPtsMs: head.startPtsMs + (excess / AUDIO_SAMPLE_RATE) * 1000,
          samples: head.samples.subarray(excess),
        };
        this.total -= excess;
        excess = 0;
      }
    }
  }
}

/** Root-mean-square level of a clip in [-1, 1] units. */
export function rms(samples: Float32Array): number {
  if (samples.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i]!;
    sum += s * s;
  }
  return Math.sqrt(sum / samples.length);
}

/** How long media stays in the buffers, in stream time: the longest span a cycle's window may cover. */
export function mediaMaxAgeMs(p: Pick<StreamParams, 'generate_every_s' | 'audio_window_s' | 'max_frames' | 'target_fps'>): number {
  const framesSpan = p.target_fps > 0 ? (p.max_frames / p.target_fps) * 1000 : 0;
  return Math.max(p.generate_every_s * 1000, p.audio_window_s * 1000, framesSpan);
}

/** The frame and audio buffers of one stream, sized, cleared and aged together. */
export class MediaWindow {
  readonly frames: FrameBuffer;
  readonly audio: AudioBuffer;

  constructor(p: Pick<StreamParams, 'max_frames' | 'audio_window_s'>) {
    this.frames = new FrameBuffer(p.max_frames);
    this.audio = new AudioBuffer(p.audio_window_s);
  }

  setParams(prev: StreamParams, next: StreamParams): void {
    if (next.max_frames !== prev.max_frames) this.frames.resize(next.max_frames);
    if (next.audio_window_s !== prev.audio_window_s) this.audio.resize(next.audio_window_s);
  }

  clear(): void {
    this.frames.clear();
    this.audio.clear();
  }

  /** Ages both out at stream time `nowMs`; returns the frames that aged out. */
  prune(nowMs: number, p: StreamParams): number {
    const maxAge = mediaMaxAgeMs(p);
    this.audio.prune(nowMs, maxAge);
    return this.frames.prune(nowMs, maxAge);
  }
}
