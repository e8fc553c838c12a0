/**
 * Generated media with a known structure, for the content-aware cycle tests and the `content` bench:
 * a list of video scenes (static test cards and colours, or ffmpeg's moving `testsrc2`) cut hard into
 * each other, over a list of sounds (silence, sine-tone bursts, real speech from `espeak-ng`), encoded
 * as live input arrives (H.264 with a fixed GOP, AAC). It returns the file and its timeline: where each
 * cut is and where each sound ends, in the stream's own presentation time (ms).
 *
 * Everything runs in ffmpeg / espeak-ng child processes; files go to the per-process media cache
 * (test-source.ts owns and removes it), named after the spec, so one spec is encoded once per process.
 * `decodeClip` runs such a clip through the real sampler once; `replay` hands what it produced to a
 * consumer in presentation-time order, as a live input interleaves video and audio, so stream time,
 * cuts and sound ends line up with the clip's timeline however fast the decoder ran.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MediaError } from './errors.js';
import { DEFAULT_SAMPLER_SETTINGS, MediaSampler } from './sampler.js';
import { exists, mediaCacheDir, runFfmpeg, splitIntoSegments } from './test-source.js';
import type { AudioChunk, SampledFrame, SamplerSettings } from './types.js';

/** `static`: a test card or colour that never changes; `moving`: testsrc2 (moving shapes, a counter). */
export type SceneSpec =
  | { kind: 'static'; card: 'smptebars' | 'rgbtestsrc' | 'colorchart' | 'pal75bars' | `color:${string}`; durationS: number }
  | { kind: 'moving'; durationS: number };

export type SoundSpec =
  | { kind: 'silence'; durationS: number }
  | { kind: 'tone'; hz: number; durationS: number }
  /** Spoken by espeak-ng, then padded with silence (or cut) to durationS. */
  | { kind: 'speech'; text: string; durationS: number };

export interface SceneClipSpec {
  scenes: SceneSpec[];
  sounds: SoundSpec[];
  width?: number;
  height?: number;
  fps?: number;
  gopS?: number;
}

export interface SceneClip {
  path: string;
  durationS: number;
  /** Media time of each hard cut (a scene's start, after the first). */
  cutsMs: number[];
  /** Media time of the end of each tone or speech (speech: the end of espeak-ng's audio). */
  soundEndsMs: number[];
  /** Each tone or speech as [start, end] in ms (end as in soundEndsMs). */
  soundsMs: Array<[number, number]>;
  /** Static scenes as [start, end) in ms. */
  staticMs: Array<[number, number]>;
}

const inflight = new Map<string, Promise<SceneClip>>();

/** `dir`: where to keep the encoded clip (default: the per-process media cache, removed at exit). */
export function generateSceneClip(spec: SceneClipSpec, opts: { dir?: string } = {}): Promise<SceneClip> {
  const key = `${opts.dir ?? ''}|${JSON.stringify(spec)}`;
  let p = inflight.get(key);
  if (!p) {
    p = build(spec, opts.dir);
    inflight.set(key, p);
    p.catch(() => inflight.delete(key));
  }
  return p;
}

async function build(spec: SceneClipSpec, outDir: string | undefined): Promise<SceneClip> {
  const w = spec.width ?? 640;
  const h = spec.height ?? 360;
  const fps = spec.fps ?? 30;
  const gop = Math.max(1, Math.round((spec.gopS ?? 1) * fps));
  const durationS = spec.scenes.reduce((s, x) => s + x.durationS, 0);
  const dir = outDir ?? (await mediaCacheDir());
  await mkdir(dir, { recursive: true });
  const name = `scenes-${createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 16)}`;
  const out = join(dir, `${name}.ts`);

  const speechS: number[] = [];
  const args: string[] = [];
  const filters: string[] = [];
  let input = 0;
  spec.scenes.forEach((s) => {
    const src = s.kind === 'moving' ? 'testsrc2' : s.card.startsWith('color:') ? `color=c=${s.card.slice(6)}` : s.card;
    const sep = src.includes('=') ? ':' : '=';
    // colorchart has no size option: it is drawn at its own size and scaled.
    const graph = src === 'colorchart' ? `colorchart=rate=${fps},scale=${w}:${h}` : `${src}${sep}size=${w}x${h}:rate=${fps}`;
    args.push('-f', 'lavfi', '-t', String(s.durationS), '-i', graph);
    filters.push(`[${input}:v]format=yuv420p,setsar=1[v${input}]`);
    input++;
  });
  const videoInputs = input;
  for (const [i, s] of spec.sounds.entries()) {
    if (s.kind === 'silence') args.push('-f', 'lavfi', '-t', String(s.durationS), '-i', 'anullsrc=r=48000:cl=mono');
    else if (s.kind === 'tone') args.push('-f', 'lavfi', '-t', String(s.durationS), '-i', `sine=frequency=${s.hz}:sample_rate=48000`);
    else {
      const wav = join(dir, `${name}-speech${i}.wav`);
      await espeak(s.text, wav);
      speechS[i] = await wavDurationS(wav);
      args.push('-i', wav);
    }
    filters.push(`[${input}:a]aresample=48000,aformat=sample_fmts=fltp:channel_layouts=mono,apad,atrim=duration=${s.durationS},asetpts=N/SR/TB[a${input}]`);
    input++;
  }
  const vIn = Array.from({ length: videoInputs }, (_, i) => `[v${i}]`).join('');
  const aIn = Array.from({ length: spec.sounds.length }, (_, i) => `[a${videoInputs + i}]`).join('');
  filters.push(`${vIn}concat=n=${videoInputs}:v=1:a=0[v]`, `${aIn}concat=n=${spec.sounds.length}:v=0:a=1[a]`);

  if (!(await exists(out))) {
    const tmp = `${out}.${process.pid}.part`;
    await runFfmpeg([
      ...args,
      '-filter_complex', filters.join(';'),
      '-map', '[v]', '-map', '[a]', '-t', String(durationS),
      '-c:v', 'libx264', '-preset', 'veryfast', '-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0', '-pix_fmt', 'yuv420p',
      '-c:a', 'aac', '-b:a', '96k', '-ac', '2',
      '-f', 'mpegts', tmp,
    ]);
    await rename(tmp, out);
  }
  for (const i of speechS.keys()) await rm(join(dir, `${name}-speech${i}.wav`), { force: true });

  // MPEG-TS starts its clock at 1.4 s by default (ffmpeg's muxdelay+preload); the timeline is given in
  // the stream's own pts, so tests compare like with like.
  const t0 = await firstPtsMs(out);
  const cutsMs: number[] = [];
  const staticMs: Array<[number, number]> = [];
  let t = 0;
  spec.scenes.forEach((s, i) => {
    if (i > 0) cutsMs.push(t0 + t * 1000);
    if (s.kind === 'static') staticMs.push([t0 + t * 1000, t0 + (t + s.durationS) * 1000]);
    t += s.durationS;
  });
  const soundsMs: Array<[number, number]> = [];
  t = 0;
  spec.sounds.forEach((s, i) => {
    if (s.kind === 'tone') soundsMs.push([t0 + t * 1000, t0 + (t + s.durationS) * 1000]);
    if (s.kind === 'speech') soundsMs.push([t0 + t * 1000, t0 + (t + Math.min(s.durationS, speechS[i] ?? s.durationS)) * 1000]);
    t += s.durationS;
  });
  return { path: out, durationS, cutsMs, soundEndsMs: soundsMs.map((x) => x[1]), soundsMs, staticMs };
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let outText = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (outText += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d.slice(0, 2000)));
    child.on('error', (e) => reject(new MediaError('ffmpeg_unavailable', `cannot run ${cmd}: ${e.message}`, { cause: e })));
    child.on('close', (code) => (code === 0 ? resolve(outText) : reject(new MediaError('ffmpeg_failed', `${cmd} exited with ${code}: ${err.trim()}`))));
  });
}

function espeak(text: string, wav: string): Promise<string> {
  return run('espeak-ng', ['-s', '160', '-w', wav, text]);
}

async function wavDurationS(path: string): Promise<number> {
  const s = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', path]);
  return Number(s.trim());
}

async function firstPtsMs(path: string): Promise<number> {
  const s = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=start_time', '-of', 'csv=p=0', path]);
  // MPEG-TS lists the stream once per program as well: the first line is enough.
  return Math.round(Number(s.trim().split(/\s+/)[0]!.replace(/,$/, '')) * 1000);
}

export interface DecodedClip {
  frames: SampledFrame[];
  audio: AudioChunk[];
  signatureMs: number;
  /** What the sampler reported (a clean decode reports nothing). */
  errors: string[];
}

/**
 * Everything the sampler makes of the clip. Segments are fed as the decoder takes them (at most
 * 512 KiB behind, as a live input would be), so nothing is dropped for backlog or cut at close.
 */
export async function decodeClip(path: string, settings: Partial<SamplerSettings>): Promise<DecodedClip> {
  const segs = await splitIntoSegments(path);
  const s = new MediaSampler({ settings: { ...DEFAULT_SAMPLER_SETTINGS, ...settings }, maxPendingBytes: 1 << 30, maxEncodeQueue: 1 << 16 });
  const out: DecodedClip = { frames: [], audio: [], signatureMs: 0, errors: [] };
  s.on('frame', (f) => out.frames.push(f));
  s.on('audio', (a) => out.audio.push(a));
  s.on('error', (e) => out.errors.push(`${e.code}: ${e.message}`));
  const drained = async (maxBytes: number): Promise<void> => {
    while (s.pendingBytes() > maxBytes) await new Promise((r) => setTimeout(r, 5));
  };
  for (const [i, b] of segs.entries()) {
    await drained(512 * 1024);
    s.beginSegment(i);
    s.push(b);
    s.endSegment();
  }
  // close() gives the decoder a few seconds to finish before killing it: hand it everything first.
  await drained(0);
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
