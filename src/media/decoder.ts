/**
 * One long-lived ffmpeg process decoding one continuous MPEG-TS byte stream (segments back to back on
 * stdin). It selects video frames by presentation time and scales (optionally letterboxes) them inside ffmpeg, writes them as
 * PPM on stdout, and writes 16 kHz mono f32le audio on fd 3. Timestamps come from `showinfo` /
 * `ashowinfo` lines on stderr (`-copyts`, so they are the input's own presentation times), paired with
 * the frames / samples in order. Running ffmpeg as a child keeps decode CPU off the event loop and a
 * decoder crash on hostile input out of the server process.
 */
import { AUDIO_SAMPLE_RATE } from './types.js';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from '../log.js';
import { PpmStreamParser, type RgbImage } from './ppm.js';

export interface DecoderConfig {
  video: boolean;
  audio: boolean;
  targetFps: number;
  /** Longest side after scaling; null = no scaling. */
  maxSidePx: number | null;
  /**
   * With maxSidePx: scale to fit inside maxSidePx² (up or down, aspect kept) and pad black to exactly
   * maxSidePx × maxSidePx, centred — the square Gemma 3n's processor resizes every image to.
   */
  letterbox?: boolean;
  /** Frames whose time bucket is not after this one's are skipped (keeps spacing across restarts). */
  lastFramePtsMs?: number;
  /** Decode only reference frames (`-skip_frame noref`). */
  skipNonRef: boolean;
  ffmpegPath: string;
}

/** Where the picture sits inside a frame (the rest is letterbox padding). */
export interface ContentRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface DecodedFrame extends RgbImage {
  ptsMs: number;
  /** Size of the decoded picture before scaling. */
  srcWidth: number;
  srcHeight: number;
  /** The picture's rectangle within the frame; the whole frame unless letterboxed. */
  content: ContentRect;
  /** Padded to a maxSidePx square (DecoderConfig.letterbox). */
  letterboxed: boolean;
}

export interface DecoderEvents {
  frame(f: DecodedFrame): void;
  audio(startPtsMs: number, samples: Float32Array): void;
  /** ffmpeg logged an error-level line about the input. */
  decodeError(line: string): void;
  /** The process ended. `expected` = after end() or kill(). */
  exit(info: { code: number | null; signal: NodeJS.Signals | null; expected: boolean; lastError?: string }): void;
}

const EPS = 1e-6;
const AUDIO_RATE = AUDIO_SAMPLE_RATE;
const MAX_AUDIO_CHUNK_SAMPLES = AUDIO_RATE / 10;
/** Unpaired items kept while waiting for the other half (pts line vs image). Beyond → protocol error. */
const MAX_UNPAIRED = 64;

export function buildDecoderArgs(c: DecoderConfig): string[] {
  const args = ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'level+info'];
  // Small probe: the first segment must not wait for megabytes of look-ahead before frames come out.
  // Audio-only: ffmpeg holds every sample until the probe is satisfied, and with 1 s of analysis the
  // first ~1 s of audio comes out in one lump a segment late; an AAC/Opus header needs a few packets.
  // Video keeps the larger probe (a 1080p keyframe alone can exceed 32 KB).
  const probe = c.video ? ['1000000', '1000000'] : ['32768', '100000'];
  args.push('-probesize', probe[0]!, '-analyzeduration', probe[1]!, '-fflags', '+discardcorrupt', '-copyts');
  if (c.video && c.skipNonRef) args.push('-skip_frame', 'noref');
  args.push('-f', 'mpegts', '-i', 'pipe:0');
  if (c.video) {
    const f = c.targetFps;
    const bucket = (x: string) => `floor(${x}*${f}+${EPS})`;
    const b0 = c.lastFramePtsMs === undefined ? -1 : Math.floor((c.lastFramePtsMs / 1000) * f + EPS);
    const lastT = c.lastFramePtsMs === undefined ? -1e9 : c.lastFramePtsMs / 1000;
    // One frame per 1/fps bucket of presentation time; a backwards timestamp jump re-arms selection
    // instead of stalling until the clock catches up.
    const sel =
      `isnan(prev_selected_t)*(gt(${bucket('t')},${b0})+lt(t,${lastT - 1}))` +
      `+gt(${bucket('t')},${bucket('prev_selected_t')})+lt(t,prev_selected_t)`;
    // showinfo sits before scaling so it reports the source size as well as the pts.
    const filters = [`select='${sel}'`, 'showinfo=checksum=0'];
    if (c.maxSidePx !== null && c.letterbox) {
      const px = c.maxSidePx;
      // Fit inside px×px, then pad to the square in RGB (exact black, and no chroma rounding of the
      // offsets). The canvas is px×px for every source aspect, so ffmpeg's fixed encoder size is moot.
      filters.push(
        `scale=w=${px}:h=${px}:force_original_aspect_ratio=decrease:flags=area`,
        'format=rgb24',
        `pad=${px}:${px}:(ow-iw)/2:(oh-ih)/2:color=black`,
      );
    } else if (c.maxSidePx !== null) {
      const px = c.maxSidePx;
      // Fit inside px×px (never upscale), then pad to a fixed px×px canvas: ffmpeg fixes the encoder's
      // size at the first frame and would stretch a later picture of another aspect. The padding is cut
      // off again here, from the source size showinfo reports (see fitInside).
      filters.push(`scale=w='min(iw,${px})':h='min(ih,${px})':force_original_aspect_ratio=decrease:flags=area`, `pad=${px}:${px}:0:0`);
    }
    // Output timestamps only need to be increasing (image2pipe rejects a backwards step, which would
    // lose a frame and its pairing); the real pts was logged by showinfo above. One second per frame:
    // `setpts=N` (N ticks of the 1/90000 input time base) is rounded into the muxer's 1/fps time base,
    // where 1500+ consecutive frames collapse onto the same timestamp ("non monotonically increasing
    // dts" for every frame from about the 1500th at 30 fps).
    filters.push('setpts=N/TB');
    filters.push('format=rgb24');
    args.push('-map', '0:v:0', '-vf', filters.join(','), '-fps_mode', 'passthrough', '-c:v', 'ppm', '-f', 'image2pipe', '-flush_packets', '1', 'pipe:1');
  }
  if (c.audio) {
    args.push('-map', '0:a:0', '-af', `aresample=${AUDIO_RATE},ashowinfo,asetpts=N/SR/TB`, '-ac', '1', '-c:a', 'pcm_f32le', '-f', 'f32le', '-flush_packets', '1', 'pipe:3');
  }
  return args;
}

/** The size ffmpeg's scale filter picks for min(iw,px)×min(ih,px) with force_original_aspect_ratio=decrease. */
export function fitInside(iw: number, ih: number, px: number): { width: number; height: number } {
  return fitBox(iw, ih, Math.min(iw, px), Math.min(ih, px));
}

/** Where the letterboxed picture lands in the px×px frame (scale=px:px:decrease, pad centred). */
export function letterboxRect(iw: number, ih: number, px: number): ContentRect {
  const fit = fitBox(iw, ih, px, px);
  return { x: Math.floor((px - fit.width) / 2), y: Math.floor((px - fit.height) / 2), ...fit };
}

function fitBox(iw: number, ih: number, w: number, h: number): { width: number; height: number } {
  // av_rescale rounds half away from zero.
  const tmpW = Math.floor((h * iw) / ih + 0.5);
  const tmpH = Math.floor((w * ih) / iw + 0.5);
  return { width: Math.max(1, Math.min(tmpW, w)), height: Math.max(1, Math.min(tmpH, h)) };
}

function cropTopLeft(rgb: Buffer, stride: number, width: number, height: number): Buffer {
  if (width === stride) return rgb.subarray(0, width * height * 3);
  const out = Buffer.allocUnsafe(width * height * 3);
  for (let y = 0; y < height; y++) rgb.copy(out, y * width * 3, y * stride * 3, (y * stride + width) * 3);
  return out;
}

const SHOWINFO_RE = /^\[Parsed_(a?)showinfo_\d+ @ [^\]]+\] \[info\] n:\s*(\d+) pts:\s*(\S+) pts_time:(\S+)(?:.*?nb_samples:(\d+))?/;
const SIZE_RE = / s:(\d+)x(\d+) /;
const LEVEL_RE = /\[(fatal|error|panic)\] (.*)$/;

export class FfmpegDecoder {
  readonly config: DecoderConfig;
  private readonly child: ChildProcess;
  private readonly stdin: Writable;
  private readonly log: Logger | undefined;
  private readonly ppm = new PpmStreamParser();
  private readonly framePts: Array<{ ptsMs: number; w: number; h: number }> = [];
  private readonly frames: RgbImage[] = [];
  /** Audio timestamp anchors: (sample index in the output, pts in ms) from ashowinfo. */
  private readonly anchors: Array<{ sample: number; ptsMs: number }> = [];
  private anchorSamples = 0;
  private audioSamplesOut = 0;
  private audioRest: Buffer | null = null;
  private pendingAudio: Buffer[] = [];
  private pendingAudioBytes = 0;
  private stderrRest = '';
  private expectedExit = false;
  /** Input ended mid-segment (stop): errors about the cut tail are expected, not reported. */
  private quietTail = false;
  private exited = false;
  private lastError: string | undefined;
  private lastFramePtsMs: number | undefined;
  /** While closing: the kill-on-silence timer (see close). */
  private drainTimer: NodeJS.Timeout | null = null;
  readonly exitedPromise: Promise<void>;

  constructor(config: DecoderConfig, private readonly on: DecoderEvents, logger?: Logger) {
    this.config = config;
    this.log = logger;
    const args = buildDecoderArgs(config);
    this.log?.debug({ args }, 'starting ffmpeg decoder');
    this.child = spawn(config.ffmpegPath, args, { stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
    this.stdin = this.child.stdin!;
    // EPIPE after ffmpeg exits is expected; the exit handler reports what happened.
    this.stdin.on('error', (e) => this.log?.debug({ err: e.message }, 'decoder stdin error'));
    const out = this.child.stdout!;
    const audio = this.child.stdio[3] as Readable;
    const err = this.child.stderr!;
    out.on('data', (c: Buffer) => {
      this.progressed();
      this.onVideoBytes(c);
    });
    audio.on('data', (c: Buffer) => {
      this.progressed();
      this.onAudioBytes(c);
    });
    err.setEncoding('utf8');
    err.on('data', (s: string) => {
      this.progressed();
      this.onStderr(s);
    });
    out.on('error', () => undefined);
    audio.on('error', () => undefined);
    this.exitedPromise = new Promise((resolve) => {
      let done = false;
      const finish = (code: number | null, signal: NodeJS.Signals | null) => {
        if (done) return;
        done = true;
        this.exited = true;
        this.flushStderr();
        this.on.exit({ code, signal, expected: this.expectedExit, lastError: this.lastError });
        resolve();
      };
      this.child.on('error', (e) => {
        this.lastError = e.message;
        finish(null, null);
      });
      this.child.on('close', finish);
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return !this.exited;
  }

  /** Bytes accepted but not yet handed to the OS pipe. */
  get pendingBytes(): number {
    return this.stdin.writableLength;
  }

  write(chunk: Buffer): void {
    if (this.exited || this.stdin.destroyed || this.stdin.writableEnded) return;
    this.stdin.write(chunk);
  }

  /**
   * The input was cut mid-segment and nothing more will come: ffmpeg's complaints about the truncated
   * last packet (it decodes what it has at end of input) are logged at debug, not reported.
   */
  markCutTail(): void {
    this.quietTail = true;
  }

  /** Closes stdin: ffmpeg drains, flushes its last frames and exits. */
  end(): void {
    this.expectedExit = true;
    if (!this.stdin.writableEnded) this.stdin.end();
  }

  kill(): void {
    this.expectedExit = true;
    if (!this.exited) this.child.kill('SIGKILL');
  }

  /**
   * Graceful end: ffmpeg drains what it was given, then SIGKILL once it has been silent (no frame, no
   * audio, no log line) for `idleGraceMs`. The deadline is on silence, not on the whole drain: input fed
   * faster than real time leaves a backlog that may take longer than any fixed grace to decode, and
   * killing a decoder that is still producing loses those frames. A hung one still goes within the grace.
   */
  async close(idleGraceMs = 3000): Promise<void> {
    this.end();
    const t = setTimeout(() => this.kill(), idleGraceMs);
    this.drainTimer = t;
    try {
      await this.exitedPromise;
    } finally {
      clearTimeout(t);
      this.drainTimer = null;
    }
  }

  /** Any output while draining pushes the idle deadline back. */
  private progressed(): void {
    this.drainTimer?.refresh();
  }

  private onVideoBytes(c: Buffer): void {
    let images: RgbImage[];
    try {
      images = this.ppm.push(c);
    } catch (e) {
      this.lastError = (e as Error).message;
      this.kill();
      return;
    }
    for (const img of images) this.frames.push(img);
    this.pairFrames();
  }

  private pairFrames(): void {
    while (this.frames.length > 0 && this.framePts.length > 0) {
      const img = this.frames.shift()!;
      const t = this.framePts.shift()!;
      const srcWidth = t.w || img.width;
      const srcHeight = t.h || img.height;
      const px = this.config.maxSidePx;
      const full = { x: 0, y: 0, width: img.width, height: img.height };
      if (px !== null && this.config.letterbox) {
        const content = t.w > 0 && t.h > 0 && img.width === px && img.height === px ? letterboxRect(t.w, t.h, px) : full;
        this.on.frame({ ...img, ptsMs: t.ptsMs, srcWidth, srcHeight, content, letterboxed: true });
      } else if (px !== null && t.w > 0 && t.h > 0 && img.width === px && img.height === px) {
        const fit = fitInside(t.w, t.h, px);
        const rgb = cropTopLeft(img.rgb, img.width, fit.width, fit.height);
        this.on.frame({ width: fit.width, height: fit.height, rgb, ptsMs: t.ptsMs, srcWidth, srcHeight, content: { x: 0, y: 0, ...fit }, letterboxed: false });
      } else {
        this.on.frame({ ...img, ptsMs: t.ptsMs, srcWidth, srcHeight, content: full, letterboxed: false });
      }
    }
    if (this.frames.length > MAX_UNPAIRED || this.framePts.length > MAX_UNPAIRED) {
      this.lastError = 'frame/timestamp pairing lost';
      this.kill();
    }
  }

  private onAudioBytes(c: Buffer): void {
    if (this.anchors.length === 0) {
      // Samples before their first timestamp line: hold them (bounded) until ashowinfo speaks.
      this.pendingAudio.push(c);
      this.pendingAudioBytes += c.length;
      if (this.pendingAudioBytes > AUDIO_RATE * 4 * 10) {
        this.lastError = 'audio timestamps missing';
        this.kill();
      }
      return;
    }
    let buf = this.audioRest ? Buffer.concat([this.audioRest, c]) : c;
    const whole = buf.length - (buf.length % 4);
    this.audioRest = whole < buf.length ? Buffer.from(buf.subarray(whole)) : null;
    buf = buf.subarray(0, whole);
    let offset = 0;
    while (offset < buf.length) {
      const startSample = this.audioSamplesOut;
      // Split at the next anchor that is not contiguous with the running clock.
      const anchor = this.anchorFor(startSample);
      const nextBreak = this.nextBreakAfter(startSample);
      // Pipe reads carry up to ~1 s of audio; emitting it in ≤ 100 ms pieces keeps stream time (which
      // schedules cycles and ends their windows) from jumping a whole read at once.
      const maxSamples = Math.min((buf.length - offset) / 4, MAX_AUDIO_CHUNK_SAMPLES);
      const n = nextBreak === undefined ? maxSamples : Math.min(maxSamples, nextBreak - startSample);
      const bytes = buf.subarray(offset, offset + n * 4);
      const samples = new Float32Array(n);
      for (let i = 0; i < n; i++) samples[i] = bytes.readFloatLE(i * 4);
      const ptsMs = anchor.ptsMs + ((startSample - anchor.sample) * 1000) / AUDIO_RATE;
      this.audioSamplesOut += n;
      offset += n * 4;
      this.pruneAnchors();
      if (n > 0) this.on.audio(ptsMs, samples);
    }
  }

  /** The anchor in force at `sample`: the last one at or before it. */
  private anchorFor(sample: number): { sample: number; ptsMs: number } {
    let a = this.anchors[0]!;
    for (const x of this.anchors) {
      if (x.sample <= sample) a = x;
      else break;
    }
    return a;
  }

  private nextBreakAfter(sample: number): number | undefined {
    for (const x of this.anchors) if (x.sample > sample) return x.sample;
    return undefined;
  }

  private pruneAnchors(): void {
    while (this.anchors.length > 1 && this.anchors[1]!.sample <= this.audioSamplesOut) this.anchors.shift();
  }

  private onStderr(s: string): void {
    const text = this.stderrRest + s;
    const lines = text.split('\n');
    this.stderrRest = lines.pop() ?? '';
    if (this.stderrRest.length > 65536) this.stderrRest = '';
    for (const line of lines) this.onLine(line.replace(/\r$/, ''));
  }

  private flushStderr(): void {
    if (this.stderrRest) this.onLine(this.stderrRest);
    this.stderrRest = '';
  }

  private onLine(line: string): void {
    const m = SHOWINFO_RE.exec(line);
    if (m) {
      let ptsMs = Number(m[4]) * 1000;
      if (m[1] === 'a') {
        if (!Number.isFinite(ptsMs)) ptsMs = this.anchors.length === 0 ? 0 : this.expectedPtsAt(this.anchorSamples);
        const n = Number(m[5] ?? 0);
        const expected = this.anchors.length === 0 ? undefined : this.expectedPtsAt(this.anchorSamples);
        // Keep an anchor only where the clock jumps (>20 ms), so chunks stay long and contiguous.
        if (expected === undefined || Math.abs(expected - ptsMs) > 20) {
          this.anchors.push({ sample: this.anchorSamples, ptsMs });
          if (this.anchors.length > 256) this.anchors.splice(1, 1);
        }
        this.anchorSamples += n;
        if (this.pendingAudio.length > 0 && this.anchors.length > 0) {
          const held = this.pendingAudio;
          this.pendingAudio = [];
          this.pendingAudioBytes = 0;
          for (const c of held) this.onAudioBytes(c);
        }
      } else {
        if (!Number.isFinite(ptsMs)) ptsMs = this.lastFramePtsMs ?? 0;
        this.lastFramePtsMs = ptsMs;
        const size = SIZE_RE.exec(line);
        this.framePts.push({ ptsMs, w: Number(size?.[1] ?? 0), h: Number(size?.[2] ?? 0) });
        this.pairFrames();
      }
      return;
    }
    const lv = LEVEL_RE.exec(line);
    if (lv) {
      this.lastError = line.slice(0, 500);
      if (this.quietTail && this.stdin.writableEnded) this.log?.debug({ line: this.lastError }, 'decoder error on the cut tail of the input');
      else this.on.decodeError(this.lastError);
    }
  }

  private expectedPtsAt(sample: number): number {
    const a = this.anchors[this.anchors.length - 1]!;
    return a.ptsMs + ((sample - a.sample) * 1000) / AUDIO_RATE;
  }
}
