/**
 * `npm run bench -- streams`: N streams of 720p30 at real time in ONE runner process (capacity N)
 * versus N single-stream runner processes (capacity 1 each, the baseline), in the same run, on the same
 * media, against the same instant FAKE engine (a test double; the model costs nothing here, so what is
 * measured is the runner's media and bookkeeping path).
 *
 * Per stream: target_fps 3, generate_every_s 4, its own trickle channels on an embedded trickle server
 * in this process; its input is published one 1 s GOP per second, each segment starting at the wall
 * time of its first frame (media time p ↔ wall t0 + p − pts0). The runners are real `serve` processes
 * (dist/, so `npm run build` first), each with its ffmpeg children.
 *
 * Reported per mode and N, over the measurement window after a warm-up:
 * - CPU-seconds per stream-second: the runner processes and all their descendants (ffmpeg);
 * - RSS per stream: VmRSS of those processes at the end, summed, / N;
 * - dropped input segments: segments the runner did not take in, or dropped before the decoder or the
 *   output (its counters);
 * - record lag: data-channel line readable here − wall time of its window end (p50 / p95 / max);
 * - passthrough first-byte latency: input segment's publish start → first byte of the same segment
 *   read from the output channel (p50 / p95).
 * A mode/N "holds" with no dropped segment, record lag p95 < 1 s and passthrough p95 < 100 ms.
 * Options: --n 1,2,4 (stream counts), --seconds 20 (window), --warmup 6.
 * This machine is shared: expect noise between runs; compare the two modes within one run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { generateTestStream, splitIntoSegments } from '../src/media/test-source.js';
import { startFakeEngine } from '../src/model/testing/fake-engine.js';
import { TricklePublisher } from '../src/trickle/publisher.js';
import { TrickleServer } from '../src/trickle/server.js';
import { TrickleSubscriber } from '../src/trickle/subscriber.js';
import { percentile } from '../src/util/stats.js';

const TICK = 100; // USER_HZ

function argOf(args: string[], name: string, def: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : def;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

/** pid → ppid for every process (one /proc scan). */
function parents(): Map<number, number> {
  const m = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      const rest = st.slice(st.lastIndexOf(')') + 2).split(' ');
      m.set(Number(d), Number(rest[1]));
    } catch {
      // gone meanwhile
    }
  }
  return m;
}

function tree(root: number, pp: Map<number, number>): number[] {
  const out = [root];
  for (let i = 0; i < out.length; i++) for (const [pid, ppid] of pp) if (ppid === out[i]) out.push(pid);
  return out;
}

/** CPU seconds of the process trees under `roots` (live processes, plus reaped children of each). */
function treeCpuS(roots: number[]): number {
  const pp = parents();
  let ticks = 0;
  for (const r of roots) {
    for (const pid of tree(r, pp)) {
      try {
        const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
        ticks += Number(f[11]) + Number(f[12]) + (pid === r ? Number(f[13]) + Number(f[14]) : 0);
      } catch {
        // exited between the scan and the read
      }
    }
  }
  return ticks / TICK;
}

function treeRssMiB(roots: number[]): number {
  const pp = parents();
  let kb = 0;
  for (const r of roots) {
    for (const pid of tree(r, pp)) {
      try {
        const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        kb += Number(m?.[1] ?? 0);
      } catch {
        // exited
      }
    }
  }
  return kb / 1024;
}

interface Runner {
  proc: ChildProcess;
  url: string;
}

async function startRunner(engineUrl: string, capacity: number): Promise<Runner> {
  const port = await freePort();
  const proc = spawn(process.execPath, ['bin/gemma3n-trickle.js', 'serve', '--port', String(port), '--host', '127.0.0.1', '--capacity', String(capacity)], {
    env: { ...process.env, OPENAI_BASE_URL: engineUrl, LOG_LEVEL: 'warn', LOG_FORMAT: 'json', MODEL_MAX_IMAGES: '8' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const r = await fetch(`${url}/health`);
      if (((await r.json()) as { status: string }).status === 'IDLE') break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error('runner did not become IDLE within 30 s');
    await sleep(100);
  }
  return { proc, url };
}

async function stopRunner(r: Runner): Promise<void> {
  const exited = new Promise<void>((res) => r.proc.once('exit', () => res()));
  r.proc.kill('SIGTERM');
  await Promise.race([exited, sleep(15_000)]);
  if (r.proc.exitCode === null) r.proc.kill('SIGKILL');
}

interface StreamProbe {
  id: string;
  runner: Runner;
  pubStart: Map<number, number>;
  outFirstByte: Map<number, number>;
  records: Array<{ at: number; endMs: number }>;
  published: number;
  stop(): Promise<void>;
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<void> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status} ${await r.text()}`);
}

async function readOut(sub: TrickleSubscriber, into: Map<number, number>): Promise<void> {
  for (;;) {
    const seg = await sub.next().catch(() => null);
    if (!seg) return;
    let first = true;
    for await (const _c of seg.body as AsyncIterable<Buffer>) {
      if (first) into.set(seg.seq, performance.now());
      first = false;
    }
  }
}

async function readData(sub: TrickleSubscriber, into: StreamProbe['records']): Promise<void> {
  for (;;) {
    const seg = await sub.next().catch(() => null);
    if (!seg) return;
    let text = '';
    for await (const c of seg.body as AsyncIterable<Buffer>) text += c.toString('utf8');
    const at = performance.now();
    for (const line of text.split('\n')) {
      if (!line) continue;
      const r = JSON.parse(line) as { type: string; window?: { end_ms: number } };
      if (r.type === 'generation' && r.window) into.push({ at, endMs: r.window.end_ms });
    }
  }
}

interface RunResult {
  cpuPerStreamS: number;
  rssPerStreamMiB: number;
  dropped: number;
  lag: number[];
  firstByte: number[];
}

async function runMode(mode: 'one' | 'many', n: number, ctx: { engineUrl: string; trickle: TrickleServer; segments: Buffer[]; pts0Ms: number; warmupS: number; seconds: number; tag: string }): Promise<RunResult> {
  const runners: Runner[] = mode === 'one' ? [await startRunner(ctx.engineUrl, n)] : await Promise.all(Array.from({ length: n }, () => startRunner(ctx.engineUrl, 1)));
  const probes: StreamProbe[] = [];
  const t = ctx.trickle;
  for (let i = 0; i < n; i++) {
    const id = `${ctx.tag}-${mode}-${n}-${i}`;
    for (const [suffix, mime] of [['', 'video/MP2T'], ['-out', 'video/MP2T'], ['-data', 'application/jsonl']] as const) t.createChannel(`${id}${suffix}`, mime);
    const runner = runners[mode === 'one' ? 0 : i]!;
    const outSub = new TrickleSubscriber({ url: t.channelUrl(`${id}-out`), start: 0, retryDelayMs: 50, maxRetries: 1000 });
    const dataSub = new TrickleSubscriber({ url: t.channelUrl(`${id}-data`), start: 0, retryDelayMs: 50, maxRetries: 1000 });
    const probe: StreamProbe = {
      id,
      runner,
      pubStart: new Map(),
      outFirstByte: new Map(),
      records: [],
      published: 0,
      stop: async () => {
        await outSub.close();
        await dataSub.close();
      },
    };
    void readOut(outSub, probe.outFirstByte);
    void readData(dataSub, probe.records);
    await post(
      `${runner.url}/stream/start`,
      {
        gateway_request_id: id,
        subscribe_url: t.channelUrl(id),
        publish_url: t.channelUrl(`${id}-out`),
        data_url: t.channelUrl(`${id}-data`),
        params: { target_fps: 3, generate_every_s: 4 },
      },
      { 'x-stream-id': id },
    );
    probes.push(probe);
  }
  const totalS = ctx.warmupS + ctx.seconds;
  const t0 = performance.now() + 200;
  const pubs = probes.map((p) => new TricklePublisher({ url: t.channelUrl(p.id), mimeType: 'video/MP2T' }));
  const feeders = probes.map(async (p, i) => {
    for (let k = 0; k < totalS && k < ctx.segments.length; k++) {
      await sleep(t0 + k * 1000 - performance.now());
      p.pubStart.set(k, performance.now());
      await pubs[i]!.publish(ctx.segments[k]!);
      p.published++;
    }
  });
  const roots = runners.map((r) => r.proc.pid!);
  await sleep(t0 + ctx.warmupS * 1000 - performance.now());
  const cpu0 = treeCpuS(roots);
  const w0 = performance.now();
  await sleep(t0 + totalS * 1000 - performance.now());
  const cpu1 = treeCpuS(roots);
  const w1 = performance.now();
  const rss = treeRssMiB(roots);
  await Promise.all(feeders);
  await sleep(1500); // the last records and segments arrive
  // Dropped: not taken in, or dropped before the decoder / the output (the runner's own counters).
  let dropped = 0;
  for (const p of probes) {
    const r = await fetch(`${p.runner.url}/streams/${p.id}/status`);
    const st = (await r.json()) as { stream?: { counters?: Record<string, number> } };
    const c = st.stream?.counters ?? {};
    dropped += Math.max(0, p.published - (c.segments_in ?? 0)) + (c.sampler_segments_dropped ?? 0) + (c.output_segments_dropped ?? 0);
  }
  const lag: number[] = [];
  const firstByte: number[] = [];
  const winStart = ctx.warmupS * 1000;
  for (const p of probes) {
    for (const r of p.records) {
      const mediaMs = r.endMs - ctx.pts0Ms;
      if (mediaMs < winStart) continue;
      lag.push(r.at - (t0 + mediaMs));
    }
    for (const [seq, at] of p.outFirstByte) {
      if (seq < ctx.warmupS) continue;
      const s = p.pubStart.get(seq);
      if (s !== undefined) firstByte.push(at - s);
    }
  }
  for (const p of probes) await p.stop();
  await Promise.all(pubs.map((x) => x.close()));
  await Promise.all(runners.map(stopRunner));
  return { cpuPerStreamS: (cpu1 - cpu0) / ((w1 - w0) / 1000) / n, rssPerStreamMiB: rss / n, dropped, lag, firstByte };
}

export async function run(args: string[]): Promise<void> {
  const ns = argOf(args, 'n', '1,2,4').split(',').map(Number).filter((x) => x > 0);
  const seconds = Number(argOf(args, 'seconds', '20'));
  const warmupS = Number(argOf(args, 'warmup', '6'));
  if (!existsSync('dist/cli/index.js')) throw new Error('dist/ is missing: run `npm run build` first (the runners are real serve processes)');
  const durationS = warmupS + seconds + 2;
  const dir = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'gemma3n-trickle', 'bench');
  process.stdout.write(`media: 720p30 test pattern + AAC, ${durationS} s, 1 s GOPs (cached in ${dir})\n`);
  const file = await generateTestStream({ durationS, fps: 30, width: 1280, height: 720, gopS: 1, audio: 'aac', outDir: dir });
  const segments = await splitIntoSegments(file);
  const pts0Ms = 1000 * Number(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'format=start_time', '-of', 'csv=p=0', file]).toString().trim());
  const engine = await startFakeEngine({ keepBodies: 0 });
  const trickle = new TrickleServer({ host: '127.0.0.1', port: 0 });
  await trickle.listen();
  const ctx = { engineUrl: engine.baseURL, trickle, segments, pts0Ms, warmupS, seconds, tag: `b${process.pid}` };
  process.stdout.write(`window ${seconds} s after ${warmupS} s warm-up; target_fps 3, generate_every_s 4; instant fake engine\n\n`);
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '—');
  const rows: Array<{ n: number; mode: string; r: RunResult; holds: boolean }> = [];
  process.stdout.write('mode          N  cpu-s/stream-s  RSS MiB/stream  dropped  lag p50/p95/max ms      first-byte p50/p95 ms  holds\n');
  for (const n of ns) {
    for (const mode of ['many', 'one'] as const) {
      const r = await runMode(mode, n, ctx);
      const lag95 = percentile(r.lag, 95);
      const fb95 = percentile(r.firstByte, 95);
      const holds = r.dropped === 0 && r.lag.length > 0 && lag95 < 1000 && fb95 < 100;
      rows.push({ n, mode, r, holds });
      process.stdout.write(
        `${(mode === 'one' ? '1 process' : `${n} process${n > 1 ? 'es' : ''}`).padEnd(13)} ${String(n).padStart(1)}  ${f(r.cpuPerStreamS, 3).padStart(14)}  ${f(r.rssPerStreamMiB, 0).padStart(14)}  ${String(r.dropped).padStart(7)}  ` +
          `${`${f(percentile(r.lag, 50), 0)}/${f(lag95, 0)}/${f(Math.max(...r.lag), 0)}`.padStart(20)}  ${`${f(percentile(r.firstByte, 50))}/${f(fb95)}`.padStart(22)}  ${holds ? 'yes' : 'no'}\n`,
      );
    }
    const one = rows.find((x) => x.n === n && x.mode === 'one')!.r;
    const many = rows.find((x) => x.n === n && x.mode === 'many')!.r;
    process.stdout.write(
      `  N=${n} ratio one/many: cpu ${f(one.cpuPerStreamS / many.cpuPerStreamS, 2)}x, RSS ${f(one.rssPerStreamMiB / many.rssPerStreamMiB, 2)}x, first-byte p95 ${f(percentile(one.firstByte, 95) / percentile(many.firstByte, 95), 2)}x\n`,
    );
  }
  for (const mode of ['one', 'many'] as const) {
    const held = rows.filter((x) => x.mode === mode && x.holds).map((x) => x.n);
    process.stdout.write(`largest N held (${mode === 'one' ? 'one process' : 'N processes'}), of ${ns.join(',')}: ${held.length ? Math.max(...held) : 'none'}\n`);
  }
  await trickle.close();
  await engine.close();
}
