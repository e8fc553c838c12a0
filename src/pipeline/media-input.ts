/**
 * A stream's media side: the input subscriber, the passthrough relay (and the output publisher it
 * owns and closes), and the sampler that decodes frames and 16 kHz audio for the generation loop.
 * Owns what it measures — segments/bytes/frames/audio in, media errors, input rates, the last input
 * time and frame size — and reports each media error once through `onError`.
 *
 * Lifetime: constructed idle; `run()` relays until the input ends and the sampler has drained
 * (resolves) or the input fails (rejects); `close()` stops the relay and the sampler (together); idempotent, never rejects.
 */
import type { StreamParams } from '../config/params.js';
import { errorCode, errorMessage } from '../errors.js';
import type { ErrorCode } from '../error-codes.js';
import type { Logger } from '../log.js';
import { metrics } from '../metrics.js';
import { MediaRelay } from '../media/relay.js';
import { MediaSampler } from '../media/sampler.js';
import type { AudioChunk, SampledFrame, SamplerSettings } from '../media/types.js';
import type { BackendCapabilities } from '../model/backend.js';
import { TricklePublisher } from '../trickle/publisher.js';
import { TrickleSubscriber } from '../trickle/subscriber.js';
import { RateMeter } from './status.js';
import type { StreamStatusSnapshot } from './types.js';

/** What the sampler produces for these params and this backend (as the backend declares it). */
export function samplerSettings(p: StreamParams, caps: BackendCapabilities): SamplerSettings {
  return {
    targetFps: p.target_fps,
    enableDownscale: p.enable_downscale,
    downscalePx: p.downscale_px,
    modality: p.modality,
    jpegQuality: p.jpeg_quality,
    letterbox: p.letterbox,
    wantJpeg: (caps.imageEncoding ?? 'jpeg') === 'jpeg',
    wantRgb: caps.imageEncoding === 'rgb',
  };
}

const SAMPLER_KEYS: ReadonlyArray<[keyof StreamParams, keyof SamplerSettings]> = [
  ['target_fps', 'targetFps'],
  ['enable_downscale', 'enableDownscale'],
  ['downscale_px', 'downscalePx'],
  ['modality', 'modality'],
  ['jpeg_quality', 'jpegQuality'],
  ['letterbox', 'letterbox'],
];

export interface MediaInputOptions {
  streamId: string;
  subscribeUrl: string;
  publishUrl?: string | undefined;
  params: StreamParams;
  capabilities: BackendCapabilities;
  samplerMaxPendingBytes?: number | undefined;
  /** The ffmpeg binary the sampler decodes with (default `ffmpeg` on PATH). */
  ffmpegPath?: string | undefined;
  log: Logger;
  onFrame(f: SampledFrame): void;
  onAudio(a: AudioChunk): void;
  onError(code: ErrorCode, message: string, fields: Record<string, unknown>): void;
  onFirstInput(): void;
  onFirstOutput(): void;
}

export class MediaInput {
  private readonly o: MediaInputOptions;
  private readonly sampler: MediaSampler;
  private readonly relay: MediaRelay;
  private closing: Promise<void> | undefined;
  private samplerDrained: Promise<void> | undefined;
  private lastInput: number | undefined;
  private frameDims: { width: number; height: number } | undefined;
  private readonly videoRate = new RateMeter();
  private readonly audioRate = new RateMeter();
  private readonly c = { segments_in: 0, bytes_in: 0, frames_in: 0, audio_chunks_in: 0, audio_ms_in: 0, media_errors: 0 };

  constructor(o: MediaInputOptions) {
    this.o = o;
    const sid = { stream_id: o.streamId };
    this.sampler = new MediaSampler({
      settings: samplerSettings(o.params, o.capabilities),
      ...(o.samplerMaxPendingBytes !== undefined ? { maxPendingBytes: o.samplerMaxPendingBytes } : {}),
      ...(o.ffmpegPath !== undefined ? { ffmpegPath: o.ffmpegPath } : {}),
      logger: o.log.child({ component: 'sampler' }),
    });
    this.sampler.on('frame', (f: SampledFrame) => {
      if (this.closing) return;
      this.c.frames_in++;
      this.videoRate.mark();
      this.lastInput = Date.now();
      this.frameDims = { width: f.width, height: f.height };
      metrics.framesSampled.inc(sid);
      o.onFrame(f);
    });
    this.sampler.on('audio', (a: AudioChunk) => {
      if (this.closing) return;
      this.c.audio_chunks_in++;
      this.c.audio_ms_in += (a.samples.length / a.sampleRate) * 1000;
      this.audioRate.mark();
      this.lastInput = Date.now();
      o.onAudio(a);
    });
    this.sampler.on('error', (err: unknown) => {
      this.c.media_errors++;
      if (errorCode(err) === 'segment_dropped') metrics.segmentsDropped.inc({ ...sid, where: 'sampler' });
      o.onError(errorCode(err), errorMessage(err), { source: 'sampler' });
    });
    // deleteOnClose: at the stream's end the output channel is deleted, which output readers get as
    // end of stream (Lp-Trickle-Closed), as go-livepeer's and ai-runner's publishers do on Close().
    // The relay owns this publisher and closes it once it has stopped writing.
    const output = o.publishUrl
      ? new TricklePublisher({ url: o.publishUrl, mimeType: 'video/MP2T', deleteOnClose: true, logger: o.log.child({ channel: 'output' }) })
      : undefined;
    this.relay = new MediaRelay({
      subscriber: new TrickleSubscriber({ url: o.subscribeUrl, logger: o.log.child({ channel: 'input' }) }),
      ...(output ? { publisher: output } : {}),
      sampler: this.sampler,
      logger: o.log.child({ component: 'relay' }),
    });
    this.relay.on('input-segment', (s: { seq: number; bytes: number }) => {
      this.c.segments_in++;
      this.c.bytes_in += s.bytes;
      this.lastInput = Date.now();
      metrics.segmentsIn.inc(sid);
      metrics.bytesIn.inc(sid, s.bytes);
    });
    this.relay.on('output-segment', () => metrics.segmentsOut.inc(sid));
    this.relay.on('output-bytes', (n: number) => metrics.bytesOut.inc(sid, n));
    this.relay.on('output-dropped', () => metrics.segmentsDropped.inc({ ...sid, where: 'output' }));
    this.relay.on('first-input-segment', () => o.onFirstInput());
    this.relay.on('first-output-segment', () => o.onFirstOutput());
    this.relay.on('error', (err: unknown) => {
      this.c.media_errors++;
      o.onError(errorCode(err), errorMessage(err), { source: 'relay' });
    });
  }

  /**
   * Relays until the input ends, then lets the sampler drain, and resolves; rejects when the input
   * fails for good. The drain is part of the input's end: a decoder runs behind its input (seconds
   * of backlog on a loaded host), and what it decodes after the last segment arrived is still stream
   * the loop must see before the session is told the input ended, or the tail gets no cycle.
   */
  async run(): Promise<void> {
    await this.relay.run();
    await this.drainSampler();
  }

  /** The sampler's drain, at the input's end or at close, whichever comes first (never rejects). */
  private drainSampler(): Promise<void> {
    this.samplerDrained ??= this.sampler.close().catch((e: unknown) => this.o.log.debug({ err: errorMessage(e) }, 'sampler close failed'));
    return this.samplerDrained;
  }

  /** The sampler follows params changes that concern it (others are ignored). */
  setParams(prev: StreamParams, next: StreamParams): void {
    const patch: Partial<SamplerSettings> = {};
    let changed = false;
    for (const [pk, sk] of SAMPLER_KEYS) {
      if (next[pk] !== prev[pk]) {
        (patch as Record<string, unknown>)[sk] = next[pk];
        changed = true;
      }
    }
    if (changed) this.sampler.updateSettings(patch);
  }

  get lastInputAtMs(): number | undefined {
    return this.lastInput;
  }

  get lastFrameDims(): { width: number; height: number } | undefined {
    return this.frameDims;
  }

  fps(): StreamStatusSnapshot['fps'] {
    const v = this.videoRate.rate();
    const a = this.audioRate.rate();
    // Output is passthrough: whatever arrives leaves at the same rate.
    const out = this.o.publishUrl !== undefined;
    return { ingress_video_fps: v, ingress_audio_fps: a, egress_video_fps: out ? v : 0, egress_audio_fps: out ? a : 0 };
  }

  counters(): Record<string, number> {
    const s = this.sampler.stats();
    return {
      ...this.c,
      sampler_segments_dropped: s.segmentsDropped,
      decode_errors: s.decodeErrors,
      decoder_restarts: s.decoderRestarts,
      output_segments_dropped: this.relay.stats().outputDropped,
    };
  }

  close(): Promise<void> {
    this.closing ??= Promise.all([
      this.relay.close().catch((e: unknown) => this.o.log.debug({ err: errorMessage(e) }, 'relay stop failed')),
      this.drainSampler(),
    ]).then(() => undefined);
    return this.closing;
  }
}
