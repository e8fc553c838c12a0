/**
 * Helpers for the content-aware cycle tests: decode a generated clip once with the real sampler
 * (real ffmpeg, real signatures), then replay what it produced into a generation loop in
 * presentation-time order, as a live input interleaves video and audio — so stream time, scene cuts
 * and sound ends line up with the clip's known timeline however fast the decoder ran.
 */
import { DEFAULT_SAMPLER_SETTINGS, MediaSampler } from '../../src/media/sampler.js';
import { splitIntoSegments } from '../../src/media/test-source.js';
import type { AudioChunk, SampledFrame, SamplerSettings } from '../../src/media/types.js';

export interface DecodedClip {
  frames: SampledFrame[];
  audio: AudioChunk[];
  signatureMs: number;
}

/** Everything the sampler makes of the clip (no frame dropped for backlog: it is not live). */
export async function decodeClip(path: string, settings: Partial<SamplerSettings>): Promise<DecodedClip> {
  const segs = await splitIntoSegments(path);
  const s = new MediaSampler({ settings: { ...DEFAULT_SAMPLER_SETTINGS, ...settings }, maxPendingBytes: 1 << 30, maxEncodeQueue: 1 << 16 });
  const out: DecodedClip = { frames: [], audio: [], signatureMs: 0 };
  s.on('frame', (f) => out.frames.push(f));
  s.on('audio', (a) => out.audio.push(a));
  s.on('error', () => undefined);
  segs.forEach((b, i) => {
    s.beginSegment(i);
    s.push(b);
    s.endSegment();
  });
  await s.close();
  out.signatureMs = s.stats().signatureMs;
  return out;
}

export interface ReplayTarget {
  pushFrame(f: SampledFrame): void;
  pushAudio(a: AudioChunk): void;
}

/**
 * Pushes frames and audio chunks in pts order (a chunk by its end, when it is complete), calling
 * `between` after each step so cycles can run (an instant backend answers in between).
 */
export async function replay(target: ReplayTarget, clip: DecodedClip, between: (streamMs: number) => Promise<void> | void): Promise<void> {
  const items: Array<{ at: number; push: () => void }> = [
    ...clip.frames.map((f) => ({ at: f.ptsMs, push: () => target.pushFrame(f) })),
    ...clip.audio.map((a) => ({ at: a.startPtsMs + (a.samples.length / a.sampleRate) * 1000, push: () => target.pushAudio(a) })),
  ].sort((x, y) => x.at - y.at);
  for (const it of items) {
    it.push();
    await between(it.at);
  }
}
