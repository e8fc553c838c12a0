/**
 * `npm run bench -- media`: CPU cost of the media path, against baselines measured in the same run.
 * - passthrough over real trickle (in-process server): CPU-seconds per stream-second and first-byte
 *   latency (input first byte written → output first byte read), for the MediaRelay and for a plain
 *   copy loop (subscriber → publisher, nothing else) over the same bytes;
 * - sampling 720p30 / 1080p30 at 1, 3, 7 fps with 512 px JPEG output, against a full decode of every
 *   frame (`ffmpeg -f null`, video + audio) of the same bytes; also 3 fps with `-skip_frame noref` off.
 * CPU = this process (process.cpuUsage) + reaped children (cutime/cstime from /proc/self/stat).
 */
import { spawn } from 'node:child_process';
import { MediaRelay } from '../src/media/relay.js';
import { DEFAULT_SAMPLER_SETTINGS, MediaSampler } from '../src/media/sampler.js';
import { generateTestStream, splitIntoSegments } from '../src/media/test-source.js';
import { TricklePublisher } from '../src/trickle/publisher.js';
import { TrickleServer } from '../src/trickle/server.js';
import { TrickleSubscriber } from '../src/trickle/subscriber.js';
import { cpuNow } from './cpu.js';
import { percentile } from '../src/util/stats.js';




async function measure<T>(fn: () => Promise<T>): Promise<{ cpuS: number; wallS: number; result: T }> {
  const c0 = cpuNow();
  const t0 = performance.now();
  const result = await fn();
  return { cpuS: cpuNow() - c0, wallS: (performance.now() - t0) / 1000, result };
}

function fullDecode(segs: Buffer[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', '-f', 'mpegts', '-i', 'pipe:0', '-map', '0', '-f', 'null', '-'], { stdio: ['pipe', 'ignore', 'inherit'] });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}`))));
    for (const s of segs) p.stdin.write(s);
    p.stdin.end();
  });
}

async function sample(segs: Buffer[], fps: number, skipNonRef: boolean | 'auto', px = 512, letterbox = false): Promise<number> {
  const s = new MediaSampler({ settings: { ...DEFAULT_SAMPLER_SETTINGS, targetFps: fps, downscalePx: px, letterbox, wantJpeg: true }, skipNonRef, maxPendingBytes: 1 << 30, maxEncodeQueue: 1 << 16 });
  let frames = 0;
  s.on('frame', () => frames++);
  s.on('error', () => undefined);
  segs.forEach((b, i) => {
    s.beginSegment(i);
    s.push(b);
    s.endSegment();
  });
  await s.close();
  return frames;
}


/** Feeds segments through `in`, something copies to `out`, a reader drains `out`; returns per-segment first-byte latency. */
async function passthrough(server: TrickleServer, segs: Buffer[], mode: 'relay' | 'plain' | 'direct', tag: string): Promise<number[]> {
  const inName = `bin-${tag}`;
  const outName = `bout-${tag}`;
  server.createChannel(inName, 'video/MP2T');
  server.createChannel(outName, 'video/MP2T');
  const feeder = new TricklePublisher({ url: server.channelUrl(inName), mimeType: 'video/MP2T' });
  const sub = new TrickleSubscriber({ url: server.channelUrl(inName), start: 0 });
  const pub = new TricklePublisher({ url: server.channelUrl(outName), mimeType: 'video/MP2T' });
  // 'direct': the reader reads the input channel itself (one trickle hop, no copy) — the floor.
  const reader = new TrickleSubscriber({ url: server.channelUrl(mode === 'direct' ? inName : outName), start: 0 });
  const firstIn: number[] = [];
  const firstOut: number[] = [];
  let done = 0;
  let copier: Promise<void>;
  let relay: MediaRelay | undefined;
  if (mode === 'relay') {
    relay = new MediaRelay({ subscriber: sub, publisher: pub });
    copier = relay.run();
  } else if (mode === 'direct') {
    copier = Promise.resolve();
  } else {
    copier = (async () => {
      for (;;) {
        const seg = await sub.next();
        if (!seg) return;
        const out = await pub.next();
        for await (const c of seg.body as AsyncIterable<Buffer>) await out.write(c);
        await out.end();
      }
    })();
  }
  const reading = (async () => {
    for (let i = 0; i < segs.length; i++) {
      const seg = await reader.next();
      if (!seg) return;
      let first = true;
      for await (const _c of seg.body as AsyncIterable<Buffer>) {
        if (first) firstOut[i] = performance.now();
        first = false;
      }
      done++;
    }
  })();
  for (const [i, seg] of segs.entries()) {
    while (done < i - 2) await new Promise((r) => setTimeout(r, 2));
    const out = await feeder.next();
    firstIn[i] = performance.now();
    for (let o = 0; o < seg.length; o += 16 * 1024) await out.write(seg.subarray(o, o + 16 * 1024));
    await out.end();
  }
  await reading;
  if (relay) await relay.close();
  else await sub.close();
  await copier.catch(() => undefined);
  await Promise.all([feeder.close(), pub.close(), reader.close()]);
  server.deleteChannel(inName);
  server.deleteChannel(outName);
  return firstIn.map((t, i) => firstOut[i]! - t);
}

export async function run(args: string[]): Promise<void> {
  const only = args.find((a) => a.startsWith('--only='))?.slice(7); // passthrough | sampling | letterbox
  const out = (s: string) => process.stdout.write(`${s}\n`);
  const durationS = 10;
  const streams: Record<string, Buffer[]> = {};
  for (const [name, w, h] of [['720p30', 1280, 720], ['1080p30', 1920, 1080]] as const) {
    streams[name] = await splitIntoSegments(await generateTestStream({ durationS, fps: 30, width: w, height: h, gopS: 1, audio: 'aac' }));
  }
  out(`streams: ${durationS} s, H.264 (x264 veryfast, B-frames) + AAC, 1 s GOP; CPU = node + ffmpeg children; ${durationS} s of stream per run`);

  if (only === 'letterbox') return letterboxBench(streams, durationS, out);
  // ---- passthrough ----
  if (only !== 'sampling') await benchPassthrough(streams, out);
  if (only === 'passthrough') return;
  await samplingBench(streams, durationS, out);
  await letterboxBench(streams, durationS, out);
}

/** Frame size for Gemma 3n: 768×768 letterboxed (what the processor wants) against 512 px longest side, same run. */
async function letterboxBench(streams: Record<string, Buffer[]>, durationS: number, out: (s: string) => void): Promise<void> {
  for (const [name, segs] of Object.entries(streams)) {
    for (const fps of [1, 3]) {
      const old = await measure(() => sample(segs, fps, 'auto', 512, false));
      const boxed = await measure(() => sample(segs, fps, 'auto', 768, true));
      out(
        `${name} sample ${fps} fps → JPEG: 512 px longest side ${(old.cpuS / durationS).toFixed(3)} CPU-s/stream-s (${old.result} frames); ` +
          `768×768 letterboxed ${(boxed.cpuS / durationS).toFixed(3)} CPU-s/stream-s (${boxed.result} frames, ${((100 * boxed.cpuS) / old.cpuS).toFixed(0)}% of 512 px)`,
      );
    }
  }
}

async function benchPassthrough(streams: Record<string, Buffer[]>, out: (s: string) => void): Promise<void> {
  const server = new TrickleServer({ port: 0, host: '127.0.0.1' });
  await server.listen();
  try {
    const segs = [...streams['720p30']!, ...streams['720p30']!]; // 20 segments
    const streamS = segs.length; // 1 s GOPs
    await passthrough(server, segs.slice(0, 4), 'plain', 'warm');
    for (const mode of ['direct', 'plain', 'relay'] as const) {
      const m = await measure(() => passthrough(server, segs, mode, mode));
      const lat = m.result;
      out(
        `passthrough ${mode.padEnd(6)} 720p30: ${(m.cpuS / streamS).toFixed(4)} CPU-s/stream-s (incl. in-process trickle server, feeder, reader); ` +
          `first-byte latency p50 ${percentile(lat, 50).toFixed(2)} ms, p99 ${percentile(lat, 99).toFixed(2)} ms`,
      );
    }
  } finally {
    await server.close();
  }
}

async function samplingBench(streams: Record<string, Buffer[]>, durationS: number, out: (s: string) => void): Promise<void> {
  for (const [name, segs] of Object.entries(streams)) {
    const full = await measure(() => fullDecode(segs));
    out(`${name} full decode (every frame, video+audio, ffmpeg -f null): ${(full.cpuS / durationS).toFixed(3)} CPU-s/stream-s`);
    for (const fps of [1, 3, 7]) {
      const m = await measure(() => sample(segs, fps, 'auto'));
      out(
        `${name} sample ${fps} fps → 512 px JPEG (+16 kHz audio, skip noref): ${(m.cpuS / durationS).toFixed(3)} CPU-s/stream-s ` +
          `(${((100 * m.cpuS) / full.cpuS).toFixed(0)}% of full decode), ${m.result} frames, ${(durationS / m.wallS).toFixed(1)}× realtime`,
      );
    }
    const m = await measure(() => sample(segs, 3, false));
    out(`${name} sample 3 fps, every frame decoded (no skip): ${(m.cpuS / durationS).toFixed(3)} CPU-s/stream-s (${((100 * m.cpuS) / full.cpuS).toFixed(0)}% of full decode)`);
  }
}
