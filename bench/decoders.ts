/**
 * Decoder choice, measured: the ffmpeg CLI (one child process, as src/media/decoder.ts runs it) against
 * `node-av` (FFmpeg N-API bindings, in-process), same bytes, same filter graphs, same run.
 *
 * The project does not depend on node-av. Install it somewhere else and point at it:
 *   mkdir /tmp/nodeav && cd /tmp/nodeav && npm init -y && npm install node-av
 *   NODE_AV_PATH=/tmp/nodeav/node_modules/node-av node --import tsx -e \
 *     "import('./bench/decoders.ts').then((m) => m.run(process.argv.slice(1)))" [-- --reps=3]
 * Without NODE_AV_PATH (or when it does not load) the node-av rows are skipped with a message.
 *
 * Cases, each for 720p30 and 1080p30 (10 s, x264 veryfast with B-frames, 1 s GOP, AAC 440 Hz):
 * - decode: every video frame decoded, nothing output (CLI: `-map 0:v:0 -f null -`);
 * - sample: the sampler's job — `-skip_frame noref`, pick the first frame of each 1/3 s bucket by pts
 *   (`select`), scale to fit 512 px (area), RGB24 out to Node; audio → 16 kHz mono f32 out to Node.
 * node-av runs in two modes: `async` (Readable input, async API: FFmpeg work on the libuv threadpool)
 * and `sync` (file input, *Sync API: FFmpeg work on the main thread).
 * CPU = process.cpuUsage() (all threads of this process) + reaped children (cutime/cstime in
 * /proc/self/stat), per stream-second. Event-loop blocking per run: max gap of a 1 ms setInterval
 * ("EL max") and monitorEventLoopDelay p99. Median of `--reps` runs (default 3), decoders interleaved.
 */
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { generateTestStream } from '../src/media/test-source.js';
import { cpuNow } from './cpu.js';
import { median } from '../src/util/stats.js';

const STREAM_S = 10;
const SAMPLE_FPS = 3;
const PX = 512;
const VF =
  `select='isnan(prev_selected_t)+gt(floor(t*${SAMPLE_FPS}+1e-6),floor(prev_selected_t*${SAMPLE_FPS}+1e-6))',` +
  `scale=w='min(iw,${PX})':h='min(ih,${PX})':force_original_aspect_ratio=decrease:flags=area,format=rgb24`;
const AF = 'aresample=16000,aformat=sample_fmts=flt:channel_layouts=mono';

type Job = 'decode' | 'sample';
type Impl = 'cli' | 'node-av async' | 'node-av sync';

interface RunOut {
  videoFrames: number;
  rgbBytes: number;
  audioBytes: number;
}
interface Measured extends RunOut {
  cpuS: number;
  wallS: number;
  elMaxMs: number;
  elP99Ms: number;
}



async function measure(fn: () => Promise<RunOut>): Promise<Measured> {
  // Event-loop blocking: the largest gap between ticks of a 1 ms interval (minus its period), plus
  // monitorEventLoopDelay's p99. The interval sees a fully synchronous run as one long gap.
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  let last = performance.now();
  let maxGap = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last - 1);
    last = now;
  }, 1);
  const c0 = cpuNow();
  const t0 = performance.now();
  const out = await fn();
  const wallS = (performance.now() - t0) / 1000;
  const cpuS = cpuNow() - c0;
  // Let the loop turn once more, so that a run that blocked it to the end is seen.
  await new Promise((r) => setTimeout(r, 20));
  clearInterval(tick);
  h.disable();
  return { ...out, cpuS, wallS, elMaxMs: Math.max(0, maxGap), elP99Ms: h.percentile(99) / 1e6 };
}

// ---------------------------------------------------------------- ffmpeg CLI

function runCli(file: string, job: Job): Promise<RunOut> {
  const args = ['-hide_banner', '-nostdin', '-nostats', '-loglevel', 'error'];
  if (job === 'sample') args.push('-skip_frame', 'noref');
  args.push('-f', 'mpegts', '-i', 'pipe:0');
  if (job === 'decode') {
    args.push('-map', '0:v:0', '-f', 'null', '-');
  } else {
    args.push('-map', '0:v:0', '-vf', VF, '-fps_mode', 'passthrough', '-c:v', 'rawvideo', '-f', 'rawvideo', 'pipe:1');
    args.push('-map', '0:a:0', '-af', AF, '-c:a', 'pcm_f32le', '-f', 'f32le', 'pipe:3');
  }
  return new Promise((resolve, reject) => {
    const p = spawn('ffmpeg', args, { stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
    const out: RunOut = { videoFrames: 0, rgbBytes: 0, audioBytes: 0 };
    let err = '';
    p.stdout.on('data', (b: Buffer) => (out.rgbBytes += b.length));
    (p.stdio[3] as Readable).on('data', (b: Buffer) => (out.audioBytes += b.length));
    p.stderr.setEncoding('utf8');
    p.stderr.on('data', (d: string) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`ffmpeg exited ${code}: ${err.slice(0, 500)}`))));
    // Fed in 188·1000-byte chunks through the pipe, as a live segment would be.
    createReadStream(file, { highWaterMark: 188 * 1000 }).pipe(p.stdin);
  });
}

// ---------------------------------------------------------------- node-av (loosely typed: optional dep)

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- node-av is not a dependency; its types are not available here
type Loose = any;

async function loadNodeAv(): Promise<Loose | string> {
  const dir = process.env.NODE_AV_PATH;
  if (!dir) return 'NODE_AV_PATH is not set (point it at a node_modules/node-av directory)';
  const entry = existsSync(join(dir, 'dist', 'index.js')) ? join(dir, 'dist', 'index.js') : dir;
  // node-av 6.x's async Demuxer.packets() calls Promise.withResolvers (Node ≥ 22) although its
  // package.json allows Node 20; on Node 20 the TypeError is swallowed by the generator's `finally`
  // (which yields null = EOF), so it silently reads 0 packets. Polyfill it so Node 20 can be measured.
  const P = Promise as unknown as { withResolvers?: unknown };
  if (typeof P.withResolvers !== 'function') {
    P.withResolvers = <T>() => {
      let resolve!: (v: T) => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
      return { promise, resolve, reject };
    };
    process.stdout.write('node-av: Promise.withResolvers polyfilled (Node < 22)\n');
  }
  try {
    const m: Loose = await import(pathToFileURL(entry).href);
    if (!m.Demuxer || !m.Decoder || !m.FilterAPI) return `${entry} loaded but has no Demuxer/Decoder/FilterAPI`;
    return m;
  } catch (e) {
    return `import of ${entry} failed: ${(e as Error).message}`;
  }
}

function nodeAvVersion(): string {
  try {
    const dir = process.env.NODE_AV_PATH ?? '';
    return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version?: string }).version ?? '?';
  } catch {
    return '?';
  }
}

async function runNodeAvAsync(av: Loose, file: string, job: Job): Promise<RunOut> {
  const out: RunOut = { videoFrames: 0, rgbBytes: 0, audioBytes: 0 };
  const input: Loose = await av.Demuxer.open(createReadStream(file, { highWaterMark: 188 * 1000 }), { format: 'mpegts' });
  const vs: Loose = input.video();
  const as: Loose = job === 'sample' ? input.audio() : undefined;
  const vdec: Loose = await av.Decoder.create(vs, job === 'sample' ? { options: { skip_frame: 'noref' } } : {});
  const adec: Loose = as ? await av.Decoder.create(as) : null;
  const vf: Loose = job === 'sample' ? av.FilterAPI.create(VF) : null;
  const af: Loose = adec ? av.FilterAPI.create(AF) : null;
  const onVideo = async (frames: Loose[]): Promise<void> => {
    for (const f of frames) {
      if (!vf) {
        out.videoFrames++;
      } else {
        for (const o of await vf.processAll(f)) {
          out.videoFrames++;
          out.rgbBytes += (o.toBuffer() as Buffer).length;
          o.free();
        }
      }
      f.free();
    }
  };
  const onAudio = async (frames: Loose[]): Promise<void> => {
    for (const f of frames) {
      for (const o of await af.processAll(f)) {
        out.audioBytes += (o.toBuffer() as Buffer).length;
        o.free();
      }
      f.free();
    }
  };
  try {
    for await (const pkt of input.packets()) {
      if (pkt === null) break;
      if (pkt.streamIndex === vs.index) await onVideo(await vdec.decodeAll(pkt));
      else if (adec && pkt.streamIndex === as.index) await onAudio(await adec.decodeAll(pkt));
      pkt.free();
    }
    await onVideo(await vdec.decodeAll(null));
    if (vf) for await (const o of vf.flushFrames()) (out.videoFrames++, (out.rgbBytes += (o.toBuffer() as Buffer).length), o.free());
    if (adec) {
      await onAudio(await adec.decodeAll(null));
      for await (const o of af.flushFrames()) (out.audioBytes += (o.toBuffer() as Buffer).length), o.free();
    }
  } finally {
    vf?.close();
    af?.close();
    vdec.close();
    adec?.close();
    await input.close();
  }
  return out;
}

async function runNodeAvSync(av: Loose, file: string, job: Job): Promise<RunOut> {
  const out: RunOut = { videoFrames: 0, rgbBytes: 0, audioBytes: 0 };
  const input: Loose = av.Demuxer.openSync(file, { format: 'mpegts' });
  const vs: Loose = input.video();
  const as: Loose = job === 'sample' ? input.audio() : undefined;
  // Decoder.createSync with `options` (skip_frame) segfaults node-av 6.1.1 later (at GC/exit); the
  // async create does not. Creation is one-off, so the async one is used here too.
  const vdec: Loose = await av.Decoder.create(vs, job === 'sample' ? { options: { skip_frame: 'noref' } } : {});
  const adec: Loose = as ? await av.Decoder.create(as) : null;
  const vf: Loose = job === 'sample' ? av.FilterAPI.create(VF) : null;
  const af: Loose = adec ? av.FilterAPI.create(AF) : null;
  const onVideo = (frames: Loose[]): void => {
    for (const f of frames) {
      if (!vf) out.videoFrames++;
      else
        for (const o of vf.processAllSync(f)) {
          out.videoFrames++;
          out.rgbBytes += (o.toBuffer() as Buffer).length;
          o.free();
        }
      f.free();
    }
  };
  const onAudio = (frames: Loose[]): void => {
    for (const f of frames) {
      for (const o of af.processAllSync(f)) {
        out.audioBytes += (o.toBuffer() as Buffer).length;
        o.free();
      }
      f.free();
    }
  };
  try {
    for (const pkt of input.packetsSync()) {
      if (pkt === null) break;
      if (pkt.streamIndex === vs.index) onVideo(vdec.decodeAllSync(pkt));
      else if (adec && pkt.streamIndex === as.index) onAudio(adec.decodeAllSync(pkt));
      pkt.free();
    }
    onVideo(vdec.decodeAllSync(null));
    if (vf) for (const o of vf.flushFramesSync()) (out.videoFrames++, (out.rgbBytes += (o.toBuffer() as Buffer).length), o.free());
    if (adec) {
      onAudio(adec.decodeAllSync(null));
      for (const o of af.flushFramesSync()) (out.audioBytes += (o.toBuffer() as Buffer).length), o.free();
    }
  } finally {
    vf?.close();
    af?.close();
    vdec.close();
    adec?.close();
    input.closeSync();
  }
  return out;
}

// ---------------------------------------------------------------- driver


export async function run(args: string[]): Promise<void> {
  const repsArg = args.find((a) => a.startsWith('--reps='));
  const reps = repsArg ? Math.max(1, Number(repsArg.slice(7))) : 3;
  const loaded = await loadNodeAv();
  const av = typeof loaded === 'string' ? null : loaded;
  if (typeof loaded === 'string') process.stdout.write(`node-av: SKIPPED — ${loaded}\n`);
  else process.stdout.write(`node-av ${nodeAvVersion()} loaded from ${process.env.NODE_AV_PATH}\n`);

  const impls: Impl[] = av ? ['cli', 'node-av async', 'node-av sync'] : ['cli'];
  const sources = [
    { label: '720p30', outW: PX, outH: 288, file: await generateTestStream({ durationS: STREAM_S, width: 1280, height: 720 }) },
    { label: '1080p30', outW: PX, outH: 288, file: await generateTestStream({ durationS: STREAM_S, width: 1920, height: 1080 }) },
  ];
  const runOne = (impl: Impl, file: string, job: Job): Promise<RunOut> =>
    impl === 'cli' ? runCli(file, job) : impl === 'node-av async' ? runNodeAvAsync(av, file, job) : runNodeAvSync(av, file, job);

  // Warm-up (page cache, lazy library loads) — not counted.
  for (const impl of impls) await runOne(impl, sources[0]!.file, 'sample');

  process.stdout.write(
    `\n${'case'.padEnd(16)} ${'decoder'.padEnd(14)} ${'CPU-s/stream-s'.padStart(14)} ${'wall s'.padStart(7)} ` +
      `${'EL max ms'.padStart(9)} ${'EL p99 ms'.padStart(9)} ${'frames'.padStart(6)} ${'audio s'.padStart(7)}  vs cli\n`,
  );
  for (const src of sources) {
    for (const job of ['decode', 'sample'] as Job[]) {
      const runs = new Map<Impl, Measured[]>(impls.map((i) => [i, []]));
      // Interleaved so that drift in machine load hits every decoder alike.
      for (let r = 0; r < reps; r++) for (const impl of impls) runs.get(impl)!.push(await measure(() => runOne(impl, src.file, job)));
      let cliCpu = NaN;
      for (const impl of impls) {
        const ms = runs.get(impl)!;
        const cpu = median(ms.map((m) => m.cpuS)) / STREAM_S;
        if (impl === 'cli') cliCpu = cpu;
        const last = ms[ms.length - 1]!;
        const frames = job === 'decode' ? (impl === 'cli' ? '-' : String(last.videoFrames)) : String(impl === 'cli' ? last.rgbBytes / (src.outW * src.outH * 3) : last.videoFrames);
        process.stdout.write(
          `${`${src.label} ${job}`.padEnd(16)} ${impl.padEnd(14)} ${cpu.toFixed(4).padStart(14)} ${median(ms.map((m) => m.wallS)).toFixed(2).padStart(7)} ` +
            `${median(ms.map((m) => m.elMaxMs)).toFixed(1).padStart(9)} ${median(ms.map((m) => m.elP99Ms)).toFixed(1).padStart(9)} ${frames.padStart(6)} ` +
            `${(last.audioBytes / 4 / 16000).toFixed(2).padStart(7)}  ${((cpu / cliCpu) * 100).toFixed(0)} %\n`,
        );
      }
    }
  }
}
