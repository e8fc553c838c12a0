/**
 * Audio shaping shared by both backends. Gemma 3n fails on very short clips (a conv kernel in the
 * audio tower; Transformers.js throws below ~24 ms) and every engine truncates at 30 s, so clips are
 * zero-padded to at least 1 s and cut at 30 s before they go anywhere. Padding costs no prompt tokens:
 * a clip costs the same fixed 188 tokens whatever its length.
 *
 * The engine path pads further, to one server-wide length (default 30 s = 480 000 samples, the
 * feature extractor's max_length): vLLM builds without PR #50958 kill EngineCore (EngineDeadError,
 * vllm#50957) when one batch mixes clips of different lengths, and identical lengths never reach
 * that code path.
 */
import { endianness } from 'node:os';
import type { AudioInput } from './backend.js';

export const AUDIO_SAMPLE_RATE = 16000;
export const MIN_AUDIO_SAMPLES = AUDIO_SAMPLE_RATE; // 1 s
export const MAX_AUDIO_SAMPLES = AUDIO_SAMPLE_RATE * 30; // 30 s

/** Default server-wide pad length for engine requests: 30 s, the Gemma 3n feature extractor's max_length. */
export const DEFAULT_AUDIO_PAD_SAMPLES = MAX_AUDIO_SAMPLES;

/**
 * Pads (with silence, at the end) to ≥ `padTo` samples (clamped to 1–30 s; default 1 s) and truncates
 * to ≤ 30 s. Returns the input when already in range. With padTo = 30 s every clip comes out exactly
 * 480 000 samples long.
 */
export function fitAudioSamples(samples: Float32Array, padTo: number = MIN_AUDIO_SAMPLES): Float32Array {
  const target = Math.min(MAX_AUDIO_SAMPLES, Math.max(MIN_AUDIO_SAMPLES, Math.round(padTo)));
  if (samples.length > MAX_AUDIO_SAMPLES) return samples.subarray(0, MAX_AUDIO_SAMPLES);
  if (samples.length >= target) return samples;
  const out = new Float32Array(target);
  out.set(samples);
  return out;
}

/**
 * Joins several clips into one in time order (engines and the JS processor take one clip per prompt).
 * Gaps between clips are not filled: the sampler already delivers contiguous audio per cycle.
 */
export function mergeAudioClips(clips: readonly AudioInput[]): AudioInput | undefined {
  if (clips.length === 0) return undefined;
  if (clips.length === 1) return clips[0];
  const sorted = [...clips].sort((a, b) => a.startPtsMs - b.startPtsMs);
  const total = sorted.reduce((n, c) => n + c.samples.length, 0);
  const samples = new Float32Array(Math.min(total, MAX_AUDIO_SAMPLES));
  let off = 0;
  for (const c of sorted) {
    if (off >= samples.length) break;
    const part = c.samples.subarray(0, samples.length - off);
    samples.set(part, off);
    off += part.length;
  }
  return { startPtsMs: sorted[0]!.startPtsMs, sampleRate: AUDIO_SAMPLE_RATE, samples };
}

const LITTLE_ENDIAN = endianness() === 'LE';

/** RIFF/WAVE, 16 kHz, mono, PCM16 little-endian: what vLLM decodes without resampling. */
export function encodeWavPcm16(samples: Float32Array, sampleRate = AUDIO_SAMPLE_RATE): Buffer {
  const dataBytes = samples.length * 2;
  const buf = Buffer.alloc(44 + dataBytes);
  buf.write('RIFF', 0, 'ascii');
  buf.writeUInt32LE(36 + dataBytes, 4);
  buf.write('WAVE', 8, 'ascii');
  buf.write('fmt ', 12, 'ascii');
  buf.writeUInt32LE(16, 16); // fmt chunk size
  buf.writeUInt16LE(1, 20); // PCM
  buf.writeUInt16LE(1, 22); // mono
  buf.writeUInt32LE(sampleRate, 24);
  buf.writeUInt32LE(sampleRate * 2, 28); // byte rate
  buf.writeUInt16LE(2, 32); // block align
  buf.writeUInt16LE(16, 34); // bits per sample
  buf.write('data', 36, 'ascii');
  buf.writeUInt32LE(dataBytes, 40);
  // Every engine clip is 30 s (960 KB), so this loop runs on the event loop per request: a typed view
  // is several times faster than writeInt16LE. Buffer.alloc is unpooled (offset 0), so 44 is aligned.
  const pcm = LITTLE_ENDIAN ? new Int16Array(buf.buffer, buf.byteOffset + 44, samples.length) : undefined;
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]!));
    const v = Math.round(s < 0 ? s * 0x8000 : s * 0x7fff);
    if (pcm) pcm[i] = v;
    else buf.writeInt16LE(v, 44 + i * 2);
  }
  return buf;
}
