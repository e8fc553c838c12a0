/**
 * The sampler: turns input segments (fed back to back as one continuous stream) into sampled video
 * frames and 16 kHz mono audio, via one long-lived ffmpeg child per stream (see decoder.ts).
 *
 * It never blocks its caller: `push` only queues. The amount queued for the decoder is bounded
 * (`maxPendingBytes`); when the decoder is further behind than that, whole segments are dropped (they
 * start at keyframes, so the decoder resyncs cleanly on the next accepted one). Settings that change
 * ffmpeg's filter graph, and a change in the input's stream layout (codec switch, audio appearing),
 * replace the decoder at the next segment boundary.
 */
import { EventEmitter } from 'node:events';
import { childLogger, type Logger } from '../log.js';
import { FfmpegDecoder, type DecodedFrame, type DecoderConfig } from './decoder.js';
import { MediaError, type MediaErrorCode } from './errors.js';
import { encodeJpeg } from './jpeg.js';
import { frameSignature } from './signature.js';
import { probeTsLayout, type TsLayout } from './ts-probe.js';
import { AUDIO_SAMPLE_RATE, type AudioChunk, type SampledFrame, type SamplerSettings, type SamplerStats } from './types.js';

export interface MediaSamplerOptions {
  settings: SamplerSettings;
  /** Bound on bytes queued for the decoder; beyond it whole segments are dropped. Default 4 MiB. */
  maxPendingBytes?: number;
  logger?: Logger;
  ffmpegPath?: string;
  /**
   * Decode reference frames only (ffmpeg `-skip_frame noref`) when sampling far below the input rate.
   * 'auto' (default) enables it when targetFps ≤ 10; B-frames are then never candidates for selection.
   */
  skipNonRef?: boolean | 'auto';
  /** Frames waiting for JPEG encoding beyond which new frames are dropped. Default 8. */
  maxEncodeQueue?: number;
}

export const DEFAULT_SAMPLER_SETTINGS: SamplerSettings = {
  targetFps: 3,
  enableDownscale: true,
  downscalePx: 512,
  letterbox: false,
  modality: 'auto',
  jpegQuality: 80,
  wantJpeg: true,
  wantRgb: false,
};

/** Bytes of a segment's head read to find its program tables before choosing a decoder. */
const PROBE_BYTES = 188 * 40;
const SKIP_NONREF_MAX_FPS = 10;

interface DecodeJob {
  cfg: DecoderConfig;
  key: string;
  queue: Buffer[];
  queueBytes: number;
  dec: FfmpegDecoder | null;
  /** No more bytes will come: close stdin once started and fed. */
  ended: boolean;
  /** Its input stops mid-segment (closed during a segment): errors about the cut tail are not reported. */
  cutTail: boolean;
}

interface SegmentState {
  seq: number;
  drop: boolean;
  decided: boolean;
  head: Buffer[];
  headBytes: number;
}

export interface MediaSampler {
  on(event: 'frame', listener: (f: SampledFrame) => void): this;
  on(event: 'audio', listener: (a: AudioChunk) => void): this;
  on(event: 'error', listener: (e: MediaError) => void): this;
  on(event: 'close', listener: () => void): this;
}

export class MediaSampler extends EventEmitter {
  private settings: SamplerSettings;
  private readonly maxPendingBytes: number;
  private readonly log: Logger;
  private readonly ffmpegPath: string;
  private readonly skipNonRefOpt: boolean | 'auto';
  private readonly maxEncodeQueue: number;

  private seg: SegmentState | null = null;
  /**
   * Decoders in stream order. The last one receives new bytes (queued until it starts); each starts
   * only once the one before it has drained and exited, so outputs stay in time order.
   */
  private jobs: DecodeJob[] = [];
  /** What the decoder should be; null = nothing to decode. */
  private want: { cfg: DecoderConfig; key: string } | null = null;
  /** The running decoder died; bytes are discarded until the next segment starts a new one. */
  private crashed = false;
  private settingsDirty = false;
  private layout: TsLayout | null = null;
  /** No more input accepted. */
  private closed = false;
  /** Decoders drained; nothing may start. */
  private finished = false;
  /** Why the decoder must be replaced at the next segment (e.g. the picture's aspect changed). */
  private restartReason: string | null = null;
  private closing: Promise<void> | undefined;
  private started = false;
  private lastFramePtsMs: number | undefined;
  /** The last segment ended short (endSegment(false)) and nothing followed yet. */
  private lastSegmentCut = false;
  private encodeChain: Promise<void> = Promise.resolve();
  private encodeQueued = 0;
  private lastErrorSeq = new Map<string, number>();
  private readonly st: SamplerStats & { framesDropped: number; segmentsTruncated: number; signatureMs: number } = {
    segmentsIn: 0,
    bytesIn: 0,
    framesOut: 0,
    audioMsOut: 0,
    segmentsDropped: 0,
    decodeErrors: 0,
    decoderRestarts: 0,
    framesDropped: 0,
    segmentsTruncated: 0,
    signatureMs: 0,
  };

  constructor(opts: MediaSamplerOptions) {
    super();
    this.settings = validate({ ...opts.settings });
    this.maxPendingBytes = opts.maxPendingBytes ?? 4 * 1024 * 1024;
    this.log = opts.logger ?? childLogger('media.sampler');
    this.ffmpegPath = opts.ffmpegPath ?? 'ffmpeg';
    this.skipNonRefOpt = opts.skipNonRef ?? 'auto';
    this.maxEncodeQueue = opts.maxEncodeQueue ?? 8;
  }

  currentSettings(): SamplerSettings {
    return { ...this.settings };
  }

  /** Starts a segment. false = the decoder is too far behind and this whole segment will be skipped. */
  beginSegment(seq: number): boolean {
    if (this.seg && !this.seg.decided && !this.seg.drop) this.decide();
    this.seg = null;
    this.lastSegmentCut = false;
    if (this.closed) return false;
    this.st.segmentsIn++;
    const pending = this.pendingBytes();
    if (pending > this.maxPendingBytes) {
      this.seg = { seq, drop: true, decided: true, head: [], headBytes: 0 };
      this.st.segmentsDropped++;
      this.report('segment_dropped', `decoder ${pending} bytes behind (limit ${this.maxPendingBytes}); segment ${seq} skipped`, seq, true);
      return false;
    }
    this.seg = { seq, drop: false, decided: false, head: [], headBytes: 0 };
    return true;
  }

  push(chunk: Buffer): void {
    if (this.closed || chunk.length === 0) return;
    this.st.bytesIn += chunk.length;
    const seg = this.seg;
    if (!seg || seg.drop) return;
    if (!seg.decided) {
      seg.head.push(chunk);
      seg.headBytes += chunk.length;
      if (seg.headBytes >= PROBE_BYTES) this.decide();
      return;
    }
    this.feed(chunk);
  }

  /**
   * Ends the current segment. `complete: false` = its input was cut short (the relay passes that on
   * stop); if the sampler is then closed, the decoder's errors about that truncated tail are not
   * reported (they are a consequence of stopping, not of bad input).
   */
  endSegment(complete = true): void {
    if (this.seg && !this.seg.decided && !this.seg.drop) this.decide();
    this.lastSegmentCut = this.seg !== null && !complete;
    this.seg = null;
  }

  updateSettings(patch: Partial<SamplerSettings>): void {
    const next = validate({ ...this.settings, ...patch });
    const graphChanged =
      next.targetFps !== this.settings.targetFps ||
      Boolean(next.letterbox) !== Boolean(this.settings.letterbox) ||
      next.enableDownscale !== this.settings.enableDownscale ||
      next.downscalePx !== this.settings.downscalePx ||
      next.modality !== this.settings.modality;
    this.settings = next;
    if (graphChanged) this.settingsDirty = true;
  }

  /** `signatureMs`: time spent computing frame signatures (content-aware cycles), for the benches. */
  stats(): SamplerStats & { framesDropped: number; segmentsTruncated: number; signatureMs: number; pendingBytes: number } {
    return { ...this.st, pendingBytes: this.pendingBytes() };
  }

  /** Bytes accepted but not yet consumed by a decoder (including one still draining). */
  pendingBytes(): number {
    let n = 0;
    for (const j of this.jobs) n += j.queueBytes + (j.dec?.pendingBytes ?? 0);
    return n;
  }

  /** Lets the decoder finish what it was given (its last frames are still emitted), then stops it. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.seg && !this.seg.decided && !this.seg.drop) this.decide();
      // Closed with a segment still open, or right after one that was cut: the input ends mid-segment.
      const cut = this.seg !== null || this.lastSegmentCut;
      this.closed = true;
      this.seg = null;
      const last = this.jobs.at(-1);
      if (cut && last && !last.ended) {
        last.cutTail = true;
        last.dec?.markCutTail();
      }
      // Drain: every queued decoder gets its bytes, flushes its last frames and exits, in order.
      this.endCurrentJob();
      while (this.jobs.length > 0) {
        const head = this.jobs[0]!;
        if (head.dec) await head.dec.exitedPromise;
        await new Promise((r) => setImmediate(r));
      }
      this.finished = true;
      this.want = null;
      await this.encodeChain;
      this.emit('close');
    })();
    return this.closing;
  }

  // ---- segment routing ----

  private decide(): void {
    const seg = this.seg!;
    seg.decided = true;
    const head = seg.head.length === 1 ? seg.head[0]! : Buffer.concat(seg.head);
    seg.head = [];
    const layout = probeTsLayout(head);
    if (!layout) {
      if (this.currentJob() && !this.crashed) {
        // No tables at the head: let the running demuxer resync on its own.
        this.feed(head);
      } else {
        seg.drop = true;
        this.st.decodeErrors++;
        this.report('unrecognised_input', `segment ${seg.seq} has no MPEG-TS program tables; waiting for a decodable segment`, seg.seq);
      }
      return;
    }
    const layoutChanged = this.layout !== null && this.layout.signature !== layout.signature;
    this.layout = layout;
    const s = this.settings;
    const video = layout.video !== null && s.modality !== 'audio';
    const audio = layout.audio !== null && s.modality !== 'vision';
    if (!video && !audio) {
      this.setWant(null, seg.seq);
    } else {
      const skipNonRef = video && (this.skipNonRefOpt === 'auto' ? s.targetFps <= SKIP_NONREF_MAX_FPS : this.skipNonRefOpt);
      const cfg: DecoderConfig = {
        video,
        audio,
        targetFps: s.targetFps,
        maxSidePx: s.enableDownscale ? s.downscalePx : null,
        letterbox: s.enableDownscale && s.letterbox === true,
        skipNonRef,
        ffmpegPath: this.ffmpegPath,
      };
      const key = `${layout.signature}|${video}|${audio}|${cfg.targetFps}|${cfg.maxSidePx}|${cfg.letterbox}|${skipNonRef}`;
      if (layoutChanged) {
        this.report('decoder_restart', `input stream layout changed to ${layout.signature} at segment ${seg.seq}`, seg.seq);
      }
      if (this.restartReason) {
        this.report('decoder_restart', `${this.restartReason}; new decoder from segment ${seg.seq}`, seg.seq);
      }
      // Compared with the wanted decoder, not the running one: a replacement may still be waiting
      // for its predecessor to drain, with this stream's bytes queued for it.
      if (this.crashed || this.settingsDirty || this.restartReason || this.want === null || this.want.key !== key) {
        if (this.lastFramePtsMs !== undefined) cfg.lastFramePtsMs = this.lastFramePtsMs;
        this.setWant({ cfg, key }, seg.seq);
      }
    }
    this.settingsDirty = false;
    this.restartReason = null;
    this.feed(head);
  }

  private feed(chunk: Buffer): void {
    const seg = this.seg;
    if (!this.want || this.crashed || !seg || seg.drop) return;
    if (this.pendingBytes() + chunk.length > 2 * this.maxPendingBytes) {
      // One oversized segment must not grow the queue without bound: skip its remainder.
      seg.drop = true;
      this.st.segmentsTruncated++;
      this.report('segment_truncated', `segment ${seg.seq} exceeds the decoder backlog bound; rest skipped`, seg.seq, true);
      return;
    }
    const job = this.currentJob();
    if (!job) return;
    if (job.dec) {
      job.dec.write(chunk);
    } else {
      job.queue.push(chunk);
      job.queueBytes += chunk.length;
    }
  }

  private currentJob(): DecodeJob | undefined {
    const j = this.jobs.at(-1);
    return j && !j.ended ? j : undefined;
  }

  private endCurrentJob(): void {
    const j = this.jobs.at(-1);
    if (!j || j.ended) return;
    j.ended = true;
    if (j.dec) void j.dec.close(3000);
  }

  private setWant(want: { cfg: DecoderConfig; key: string } | null, seq: number): void {
    this.want = want;
    this.crashed = false;
    this.endCurrentJob();
    if (want) this.jobs.push({ cfg: want.cfg, key: want.key, queue: [], queueBytes: 0, dec: null, ended: false, cutTail: false });
    this.log.debug({ seq, key: want?.key ?? null, queued: this.jobs.length }, 'decoder requested');
    this.maybeSpawn();
  }

  /** Starts the head job's decoder if it has none yet. */
  private maybeSpawn(): void {
    const job = this.jobs[0];
    if (!job || job.dec || this.finished) return;
    if (job.ended && job.queueBytes === 0) {
      this.jobs.shift();
      this.maybeSpawn();
      return;
    }
    if (this.started) this.st.decoderRestarts++;
    this.started = true;
    const d: FfmpegDecoder = new FfmpegDecoder(
      job.cfg,
      {
        frame: (f) => this.onFrame(f),
        audio: (pts, samples) => this.onAudio(pts, samples),
        decodeError: (line) => this.onDecodeError(line),
        exit: (info) => {
          const i = this.jobs.indexOf(job);
          if (i >= 0) this.jobs.splice(i, 1);
          if (!info.expected && !this.closed) {
            if (!job.ended) this.crashed = true; // the live decoder died: resume at the next segment
            this.st.decodeErrors++;
            this.report(
              'decoder_exited',
              `decoder exited (code ${info.code}, signal ${info.signal})${info.lastError ? `: ${info.lastError}` : ''}; restarting at the next segment`,
              this.seg?.seq,
            );
          }
          this.maybeSpawn();
        },
      },
      this.log,
    );
    job.dec = d;
    if (job.cutTail) d.markCutTail();
    const q = job.queue;
    job.queue = [];
    job.queueBytes = 0;
    for (const c of q) d.write(c);
    if (job.ended) void d.close(3000);
  }

  // ---- outputs ----

  private onFrame(f: DecodedFrame): void {
    // ffmpeg fixes its encoder size at the first frame and stretches later frames to it, so a source
    // whose aspect changed comes out distorted: drop those and replace the decoder at the next segment.
    const srcAspect = f.srcWidth / f.srcHeight;
    if (Math.abs(f.content.width / f.content.height - srcAspect) / srcAspect > 0.03) {
      this.st.framesDropped++;
      if (!this.restartReason) this.restartReason = `input picture changed to ${f.srcWidth}x${f.srcHeight}`;
      return;
    }
    this.lastFramePtsMs = f.ptsMs;
    const s = this.settings;
    if (this.encodeQueued >= this.maxEncodeQueue) {
      this.st.framesDropped++;
      this.report('frame_dropped', `JPEG encoding behind; frame at ${f.ptsMs.toFixed(0)} ms dropped`, this.seg?.seq, true);
      return;
    }
    this.encodeQueued++;
    // The signature reads a few thousand pixels of the RGB already decoded (well under a millisecond).
    const t0 = performance.now();
    const signature = frameSignature(f.rgb, f.width, f.height, f.content);
    this.st.signatureMs += performance.now() - t0;
    const wantJpeg = s.wantJpeg;
    const wantRgb = s.wantRgb;
    const quality = s.jpegQuality;
    const jpegP = wantJpeg ? encodeJpeg(f.rgb, f.width, f.height, quality) : Promise.resolve(undefined);
    // Chained so frames are emitted in decode order even though encodes run in parallel threads.
    this.encodeChain = this.encodeChain.then(async () => {
      try {
        const jpeg = await jpegP;
        const frame: SampledFrame = { ptsMs: Math.round(f.ptsMs * 1000) / 1000, width: f.width, height: f.height };
        if (f.letterboxed) frame.content = { ...f.content };
        frame.signature = signature;
        if (jpeg) frame.jpeg = jpeg;
        if (wantRgb) frame.rgb = f.rgb;
        this.st.framesOut++;
        this.emit('frame', frame);
      } catch (e) {
        this.st.framesDropped++;
        this.report('frame_dropped', `JPEG encoding failed: ${(e as Error).message}`, this.seg?.seq);
      } finally {
        this.encodeQueued--;
      }
    });
  }

  private onAudio(startPtsMs: number, samples: Float32Array): void {
    this.st.audioMsOut += (samples.length * 1000) / AUDIO_SAMPLE_RATE;
    const chunk: AudioChunk = { startPtsMs: Math.round(startPtsMs * 1000) / 1000, sampleRate: AUDIO_SAMPLE_RATE, samples };
    this.emit('audio', chunk);
  }

  private onDecodeError(line: string): void {
    this.st.decodeErrors++;
    this.report('decode_error', line, this.seg?.seq, true);
  }

  /** Emits an 'error' event (once per code per segment when `oncePerSeq`), or logs when nobody listens. */
  private report(code: MediaErrorCode, message: string, seq: number | undefined, oncePerSeq = false): void {
    if (oncePerSeq) {
      if (this.lastErrorSeq.get(code) === (seq ?? -1)) return;
      this.lastErrorSeq.set(code, seq ?? -1);
    }
    const err = new MediaError(code, message, seq === undefined ? undefined : { seq });
    this.log.warn({ code, seq }, message);
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}

function validate(s: SamplerSettings): SamplerSettings {
  if (!(s.targetFps > 0) || !Number.isFinite(s.targetFps)) throw new MediaError('invalid_settings', `targetFps must be > 0 (got ${s.targetFps})`);
  if (!(s.downscalePx >= 16) || !Number.isInteger(s.downscalePx)) throw new MediaError('invalid_settings', `downscalePx must be an integer ≥ 16 (got ${s.downscalePx})`);
  if (s.letterbox !== undefined && typeof s.letterbox !== 'boolean') throw new MediaError('invalid_settings', `letterbox must be a boolean (got ${String(s.letterbox)})`);
  if (!['auto', 'vision', 'audio'].includes(s.modality)) throw new MediaError('invalid_settings', `unknown modality ${String(s.modality)}`);
  return s;
}
