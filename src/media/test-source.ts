/**
 * Synthetic MPEG-TS for demos, tests and benchmarks: ffmpeg's moving `testsrc2` pattern plus a sine tone,
 * encoded the way live inputs arrive (H.264 with a fixed GOP, AAC or Opus audio, one keyframe per GOP),
 * and a splitter that cuts such a file into one-GOP segments exactly as ffmpeg's segment muxer does for
 * RTMP ingest. Everything runs in ffmpeg child processes.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MediaError } from './errors.js';

export interface TestStreamOptions {
  /** Seconds of media. */
  durationS: number;
  fps?: number;
  width?: number;
  height?: number;
  /** Keyframe interval in seconds (one trickle segment per GOP). */
  gopS?: number;
  /** Audio codec; null for a video-only stream. */
  audio?: 'aac' | 'opus' | null;
  /** Frequency of the sine tone. */
  toneHz?: number;
  /** Omit the video track (audio-only stream). */
  noVideo?: boolean;
  /** Video codec; HEVC exists to exercise codec changes. */
  videoCodec?: 'h264' | 'hevc';
  /** Offset added to every timestamp, to continue another stream's timeline. */
  tsOffsetS?: number;
  /** Allow B-frames (x264 default); off gives a WebRTC-like stream. */
  bframes?: boolean;
  /** Where to write; defaults to a per-process cache directory. */
  outDir?: string;
  ffmpegPath?: string;
}

let cacheDir: string | undefined;

/**
 * A cache directory shared by several processes (the test runner sets it so that every test file reuses
 * the streams another file already encoded). Whoever sets it created it and removes it; this module
 * only writes into it (atomically: a .part file renamed into place, so concurrent writers are safe).
 */
export const SHARED_MEDIA_DIR_ENV = 'GEMMA3N_TEST_MEDIA_DIR';

/**
 * A directory under the OS temp dir, one per process. This module created it, so this module removes
 * it: when the process exits (normally or via process.exit), or earlier through removeMediaCacheDir().
 * A process killed by a signal leaves it behind (no handler here changes how the host reacts to signals).
 * With SHARED_MEDIA_DIR_ENV set, that directory is used instead and left for its owner to remove.
 */
export async function mediaCacheDir(): Promise<string> {
  const shared = process.env[SHARED_MEDIA_DIR_ENV];
  if (shared) {
    await mkdir(shared, { recursive: true });
    return shared;
  }
  if (!cacheDir) {
    const dir = join(tmpdir(), `gemma3n-trickle-media-${process.pid}`);
    await mkdir(dir, { recursive: true });
    if (!cacheDir) {
      cacheDir = dir;
      process.once('exit', removeMediaCacheDir);
    }
  }
  return cacheDir;
}

/** Deletes the per-process cache directory (and forgets the streams cached in it). Safe to call twice. */
export function removeMediaCacheDir(): void {
  const dir = cacheDir;
  if (!dir) return;
  cacheDir = undefined;
  process.off('exit', removeMediaCacheDir);
  // Synchronous: it also runs from the 'exit' event, where nothing asynchronous completes.
  rmSync(dir, { recursive: true, force: true });
  for (const key of [...inflight.keys()]) if (key.startsWith('|')) inflight.delete(key);
  for (const key of [...splitCache.keys()]) if (key.startsWith(dir)) splitCache.delete(key);
}

function normalise(o: TestStreamOptions): Required<Omit<TestStreamOptions, 'outDir' | 'ffmpegPath'>> {
  return {
    durationS: o.durationS,
    fps: o.fps ?? 30,
    width: o.width ?? 1280,
    height: o.height ?? 720,
    gopS: o.gopS ?? 1,
    audio: o.audio === undefined ? 'aac' : o.audio,
    toneHz: o.toneHz ?? 440,
    noVideo: o.noVideo ?? false,
    videoCodec: o.videoCodec ?? 'h264',
    tsOffsetS: o.tsOffsetS ?? 0,
    bframes: o.bframes ?? true,
  };
}

export function runFfmpeg(args: string[], ffmpegPath = 'ffmpeg'): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpegPath, ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      if (err.length < 8192) err += d;
    });
    child.on('error', (e) => reject(new MediaError('ffmpeg_unavailable', `cannot run ${ffmpegPath}: ${e.message}`, { cause: e })));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new MediaError('ffmpeg_failed', `ffmpeg exited with ${code}: ${err.trim().slice(0, 2000)}`));
    });
  });
}

const inflight = new Map<string, Promise<string>>();

/**
 * Writes a test-pattern MPEG-TS file and returns its path. Same options → same file (cached for the
 * life of the process, so many tests can ask for the same stream cheaply).
 */
export function generateTestStream(opts: TestStreamOptions): Promise<string> {
  const o = normalise(opts);
  const name =
    `src-${o.durationS}s-${o.noVideo ? 'novideo' : `${o.videoCodec}-${o.width}x${o.height}-${o.fps}fps-gop${o.gopS}${o.bframes ? '' : '-nob'}`}` +
    `-${o.audio ?? 'noaudio'}${o.audio ? `-${o.toneHz}hz` : ''}-off${o.tsOffsetS}.ts`;
  const key = `${opts.outDir ?? ''}|${name}`;
  let p = inflight.get(key);
  if (!p) {
    p = (async () => {
      const dir = opts.outDir ?? (await mediaCacheDir());
      await mkdir(dir, { recursive: true });
      const out = join(dir, name);
      if (await exists(out)) return out;
      const args: string[] = [];
      if (!o.noVideo) {
        args.push('-f', 'lavfi', '-i', `testsrc2=size=${o.width}x${o.height}:rate=${o.fps}`);
      }
      if (o.audio) {
        args.push('-f', 'lavfi', '-i', `sine=frequency=${o.toneHz}:sample_rate=48000`);
      }
      args.push('-t', String(o.durationS));
      if (!o.noVideo) {
        const gop = Math.max(1, Math.round(o.gopS * o.fps));
        if (o.videoCodec === 'hevc') {
          args.push('-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', `keyint=${gop}:min-keyint=${gop}:scenecut=0:log-level=error`);
        } else {
          // ultrafast costs less than half veryfast's CPU to encode (and less to decode). It turns B-frames
          // off, so they are asked for explicitly (3, x264's usual) unless the stream is to be WebRTC-like,
          // and its bitrate is capped near a live ingest's (~3 Mbit/s at 720p30): uncapped it is 2.5x that.
          const kbps = Math.max(200, Math.round((o.width * o.height * o.fps * 0.11) / 1000));
          args.push(
            '-c:v', 'libx264', '-preset', 'ultrafast', '-bf', o.bframes ? '3' : '0',
            '-b:v', `${kbps}k`, '-maxrate', `${kbps}k`, '-bufsize', `${2 * kbps}k`,
            '-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0',
          );
        }
        args.push('-pix_fmt', 'yuv420p');
      }
      if (o.audio === 'aac') args.push('-c:a', 'aac', '-b:a', '96k', '-ac', '2');
      if (o.audio === 'opus') args.push('-c:a', 'libopus', '-b:a', '64k', '-ac', '2');
      if (o.tsOffsetS) args.push('-output_ts_offset', String(o.tsOffsetS));
      const tmp = `${out}.${process.pid}.part`;
      args.push('-f', 'mpegts', tmp);
      await runFfmpeg(args, opts.ffmpegPath);
      await rename(tmp, out);
      return out;
    })();
    inflight.set(key, p);
    p.catch(() => inflight.delete(key));
  }
  return p;
}

/** Whether a file exists (cache checks of the test-media generators). */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

const splitCache = new Map<string, Promise<Buffer[]>>();

/**
 * Cuts an MPEG-TS file at keyframes into self-contained segments (stream copy, no re-encode), the way
 * ffmpeg's segment muxer does for RTMP ingest; with a fixed GOP that is one GOP per segment.
 */
export function splitIntoSegments(tsPath: string, opts: { segmentS?: number; ffmpegPath?: string } = {}): Promise<Buffer[]> {
  const segS = opts.segmentS ?? 0.5; // shorter than any GOP: cut at every keyframe
  const key = `${tsPath}|${segS}`;
  let p = splitCache.get(key);
  if (!p) {
    p = (async () => {
      const dir = `${tsPath}.seg${segS}.${process.pid}`; // the file may sit in a dir other processes share
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      await runFfmpeg(
        ['-copyts', '-i', tsPath, '-map', '0', '-c', 'copy', '-muxdelay', '0', '-muxpreload', '0', '-f', 'segment', '-segment_time', String(segS), '-segment_format', 'mpegts', '-reset_timestamps', '0', join(dir, '%06d.ts')],
        opts.ffmpegPath,
      );
      const names = (await readdir(dir)).filter((n) => n.endsWith('.ts')).sort();
      const bufs = await Promise.all(names.map((n) => readFile(join(dir, n))));
      await rm(dir, { recursive: true, force: true });
      return bufs;
    })();
    splitCache.set(key, p);
    p.catch(() => splitCache.delete(key));
  }
  return p;
}
