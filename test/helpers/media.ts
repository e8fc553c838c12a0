/**
 * Media generators and probes shared by media, pipeline and demo tests. Streams are made by ffmpeg at
 * test time (testsrc2 pattern + sine tone) and cached in a per-process temp dir, which
 * src/media/test-source.ts (its creator) removes when the process exits.
 */
import { createHash } from 'node:crypto';
import { generateTestStream, splitIntoSegments as split, type TestStreamOptions } from '../../src/media/test-source.js';
export { mediaCacheDir, removeMediaCacheDir } from '../../src/media/test-source.js';
import type { MediaSampler } from '../../src/media/sampler.js';
import type { MediaError } from '../../src/media/errors.js';
import type { AudioChunk, SampledFrame } from '../../src/media/types.js';
import type { TricklePublisher } from '../../src/trickle/publisher.js';
import type { TrickleSubscriber } from '../../src/trickle/subscriber.js';

export type MakeTestStreamOptions = TestStreamOptions;

/** A test-pattern MPEG-TS file (H.264 + AAC/Opus tone by default); returns its path. */
export function makeTestStream(opts: MakeTestStreamOptions): Promise<string> {
  return generateTestStream(opts);
}

/** Cuts a .ts file at every keyframe: one GOP per segment, each a self-contained TS. */
export function splitIntoSegments(tsPath: string): Promise<Buffer[]> {
  return split(tsPath);
}

/** Test stream already cut into one-GOP segments. */
export async function makeTestSegments(opts: MakeTestStreamOptions): Promise<Buffer[]> {
  return split(await generateTestStream(opts));
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Power of the DFT of `x` at `hz` (one bin, any frequency). */
function powerAt(x: Float32Array, hz: number, sampleRate: number): number {
  const w = (2 * Math.PI * hz) / sampleRate;
  let re = 0;
  let im = 0;
  for (let i = 0; i < x.length; i++) {
    re += x[i]! * Math.cos(w * i);
    im -= x[i]! * Math.sin(w * i);
  }
  return re * re + im * im;
}

/**
 * Frequency (Hz, to 1 Hz) of the strongest spectral peak between 20 Hz and 4 kHz. Coarse to fine, as a
 * scan of the whole second in 1 Hz steps costs seconds of CPU: a 100 ms slice (main lobe ±10 Hz) in
 * 5 Hz steps finds the peak's neighbourhood, then up to one second in 1 Hz steps pins it.
 */
export function dominantFrequency(samples: Float32Array, sampleRate = 16000): number {
  // Up to one second from the middle (past codec priming).
  const n = Math.min(samples.length, sampleRate);
  const start = Math.max(0, Math.floor((samples.length - n) / 2));
  const x = samples.subarray(start, start + n);
  const slice = x.subarray(0, Math.min(x.length, Math.round(sampleRate / 10)));
  const peak = (from: number, to: number, step: number, y: Float32Array): number => {
    let best = -1;
    let bestHz = from;
    for (let hz = from; hz <= to; hz += step) {
      const p = powerAt(y, hz, sampleRate);
      if (p > best) [best, bestHz] = [p, hz];
    }
    return bestHz;
  };
  const near = peak(20, 4000, 5, slice);
  return peak(Math.max(20, near - 15), Math.min(4000, near + 15), 1, x);
}

export function concatAudio(chunks: AudioChunk[]): Float32Array {
  const total = chunks.reduce((s, c) => s + c.samples.length, 0);
  const out = new Float32Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c.samples, o);
    o += c.samples.length;
  }
  return out;
}

export interface SamplerCapture {
  frames: SampledFrame[];
  audio: AudioChunk[];
  errors: MediaError[];
}

/** Records everything a sampler emits. */
export function capture(sampler: MediaSampler): SamplerCapture {
  const c: SamplerCapture = { frames: [], audio: [], errors: [] };
  sampler.on('frame', (f) => c.frames.push(f));
  sampler.on('audio', (a) => c.audio.push(a));
  sampler.on('error', (e) => c.errors.push(e));
  return c;
}

/** Feeds whole segments to a sampler, in `chunkSize` pieces, as the relay would. */
export function feedSegments(sampler: MediaSampler, segments: Buffer[], firstSeq = 0, chunkSize = 64 * 1024): void {
  segments.forEach((seg, i) => {
    sampler.beginSegment(firstSeq + i);
    for (let o = 0; o < seg.length; o += chunkSize) sampler.push(seg.subarray(o, o + chunkSize));
    sampler.endSegment();
  });
}

/** Publishes each buffer as one trickle segment, written in pieces (so the reader sees a live body). */
export async function publishSegments(pub: TricklePublisher, segments: Buffer[], chunkSize = 32 * 1024): Promise<void> {
  for (const seg of segments) {
    const out = await pub.next();
    for (let o = 0; o < seg.length; o += chunkSize) await out.write(seg.subarray(o, o + chunkSize));
    await out.end();
  }
}

/** Reads `count` segments (or until end of stream) and returns their bytes, in order. */
export async function readSegments(sub: TrickleSubscriber, count: number): Promise<Array<{ seq: number; bytes: Buffer }>> {
  const out: Array<{ seq: number; bytes: Buffer }> = [];
  while (out.length < count) {
    const seg = await sub.next();
    if (!seg) break;
    const parts: Buffer[] = [];
    for await (const c of seg.body as AsyncIterable<Buffer>) parts.push(c);
    out.push({ seq: seg.seq, bytes: Buffer.concat(parts) });
  }
  return out;
}

/** Resolves when `pred` holds, polling every 20 ms; rejects after `timeoutMs`. */
