/**
 * What `gemma3n-trickle demo` runs (loaded only when that command runs; its flags are in demo.ts):
 * everything on one machine, through the real parts — an embedded trickle
 * server, the runner's control API, a real-time publisher of a media file (or a generated test pattern
 * with a tone), and a data-channel subscriber that prints each record as one JSON line on stdout.
 * A summary (cycles, latency p50/p95, tokens) follows on exit: Ctrl-C, `--cycles N`, `--duration S`,
 * or the end of a non-looping input. Logs go to stderr so stdout stays NDJSON + the summary.
 *
 * Lifetime promises: SIGINT/SIGTERM are handled in every phase (model generation, test-pattern
 * encoding, model loading, streaming); each child process has exactly one owner that kills it and
 * waits for it (the encoder here, the publisher's ffmpeg in publishFile), nothing is started once the
 * stop signal is set, and the demo's temp media directory is removed on every exit path (a second
 * signal exits at once, after killing the demo's own children and removing that directory).
 * Progress goes to stderr: encoding the test pattern (seconds of media written) and model loading.
 * A model that failed to load for good is reported as such and ends the demo with an error.
 * The encoded test pattern is kept in the cache dir (beside the tiny model), so only the first run
 * waits for the encode.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { childLogger } from '../log.js';
import { percentile } from '../util/stats.js';
import { AppError, errorMessage } from '../errors.js';
import { describeBackend, makeTinyModel } from '../model/index.js';
import type { BackendStatus, ModelBackend } from '../model/backend.js';
import { createSessionFactory } from '../pipeline/session.js';
import { startRunnerServer } from '../server/index.js';
import { publishFile } from '../trickle/file-publisher.js';
import { TrickleServer } from '../trickle/server.js';
import { TrickleSubscriber } from '../trickle/subscriber.js';
import { startViewer } from '../viewer/server.js';
import { backendFromOptions } from './serve-run.js';
import type { DemoOptions } from './demo.js';
import { configureLogging, logConfigFrom } from '../config/runtime.js';

export interface DemoSummary {
  records: number;
  generations: number;
  errors: number;
  latencyMs: { p50: number; p95: number } | undefined;
  inputTokens: number;
  outputTokens: number;
}


function cacheHome(): string {
  const base = process.env.XDG_CACHE_HOME || (homedir() ? join(homedir(), '.cache') : tmpdir());
  return join(base, 'gemma3n-trickle');
}

/** Where `--tiny` keeps its generated model between runs. */
function tinyModelHome(): string {
  return join(cacheHome(), 'tiny-random-gemma3n');
}

/** Where the encoded test pattern is kept between runs (its name says what it is, so a change re-encodes). */
function patternCachePath(p: Pattern): string {
  return join(cacheHome(), `test-pattern-${p.durationS}s-${p.width}x${p.height}-${p.fps}fps-gop${p.gopS}-${p.toneHz}hz-${p.kbps}k.ts`);
}

/** Keeps the freshly encoded pattern for the next run; a cache that cannot be written only costs the next run's encode. */
async function keepPattern(file: string, p: Pattern): Promise<string> {
  const dest = patternCachePath(p);
  try {
    await mkdir(dirname(dest), { recursive: true });
    // a name of its own: two demos encoding at once each rename a complete copy into place
    const part = `${dest}.${process.pid}.part`;
    await copyFile(file, part);
    await rename(part, dest);
    return dest;
  } catch {
    return file;
  }
}

/** The demo stopped for a reason the user must act on (a model that cannot load). */
export class DemoError extends AppError {}

/** The test pattern the demo publishes when no --input is given. */
export interface Pattern {
  durationS: number;
  fps: number;
  width: number;
  height: number;
  gopS: number;
  toneHz: number;
  /** Video bitrate cap: a live ingest's 3 Mbit/s at 720p, scaled with the picture area. */
  kbps: number;
}

/**
 * The pattern for `--pattern-size WxH` (default 1280x720, the size a real 720p30 input has; a smaller
 * one costs proportionally less to encode, publish and decode). Even sides from 64 to 3840.
 */
export function testPattern(size = '1280x720'): Pattern {
  const m = /^(\d{2,4})x(\d{2,4})$/.exec(size);
  const [w, h] = m ? [Number(m[1]), Number(m[2])] : [NaN, NaN];
  if (!m || w < 64 || h < 64 || w > 3840 || h > 3840 || w % 2 || h % 2) {
    throw new DemoError('invalid_config', `--pattern-size must be WIDTHxHEIGHT with even sides from 64 to 3840 (got ${JSON.stringify(size)})`);
  }
  return { durationS: 20, fps: 30, width: w, height: h, gopS: 2, toneHz: 440, kbps: Math.max(200, Math.round((3000 * w * h) / (1280 * 720))) };
}

/**
 * What must be undone synchronously if the process exits without unwinding (a second signal, an
 * uncaught error): the demo's own live children and its temp directory. Normal exits clean up in
 * runDemo's finally; this is the backstop run from process 'exit'.
 */
const live = { children: new Set<ChildProcess>(), dirs: new Set<string>() };

function cleanUpNow(): void {
  for (const child of live.children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of live.dirs) rmSync(dir, { recursive: true, force: true });
}

/**
 * Encodes the looped test pattern (moving testsrc2 + a sine tone, H.264 with one keyframe per GOP,
 * AAC) into `dir`, reporting seconds of media written so the wait is not silent. The ffmpeg
 * child is owned here: aborting `signal` kills it and this waits for it before rejecting.
 */
async function encodeTestPattern(pattern: Pattern, dir: string, signal: AbortSignal, progress: (line: string) => void): Promise<string> {
  const out = join(dir, 'test-pattern.ts');
  const tmp = `${out}.part`;
  const gop = Math.round(pattern.gopS * pattern.fps);
  const args = [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-nostats', '-progress', 'pipe:1', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=${pattern.width}x${pattern.height}:rate=${pattern.fps}`,
    '-f', 'lavfi', '-i', `sine=frequency=${pattern.toneHz}:sample_rate=48000`,
    '-t', String(pattern.durationS),
    // ultrafast (B-frames back on) capped at a live ingest's 3 Mbit/s: less than half veryfast's encode
    // CPU, so a first run waits ~5 s instead of 10-20 s, at the size a real 720p30 input has.
    '-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '3', '-b:v', `${pattern.kbps}k`, '-maxrate', `${pattern.kbps}k`, '-bufsize', `${2 * pattern.kbps}k`,
    '-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0',
    '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '96k', '-ac', '2',
    '-f', 'mpegts', tmp,
  ];
  signal.throwIfAborted();
  const started = Date.now();
  const ff = spawn('ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.children.add(ff);
  const kill = (): void => void ff.kill('SIGTERM');
  signal.addEventListener('abort', kill, { once: true });
  let stderr = '';
  ff.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-2000)));
  let reported = 0;
  createInterface({ input: ff.stdout }).on('line', (line) => {
    // -progress prints key=value blocks; out_time_us is the media time written so far.
    const m = /^out_time_us=(\d+)/.exec(line);
    if (!m) return;
    const s = Math.floor(Number(m[1]) / 1e6);
    if (s >= reported + 4 && s < pattern.durationS) {
      reported = s;
      progress(`encoding test pattern: ${s}/${pattern.durationS} s of media`);
    }
  });
  const result = await new Promise<{ code: number | null; error?: Error }>((resolve) => {
    ff.once('error', (error) => resolve({ code: null, error }));
    ff.once('close', (code) => resolve({ code }));
  });
  live.children.delete(ff);
  signal.removeEventListener('abort', kill);
  signal.throwIfAborted();
  if (result.error) throw new DemoError('ffmpeg_unavailable', `cannot run ffmpeg: ${result.error.message}`);
  if (result.code !== 0) throw new DemoError('ffmpeg_failed', `ffmpeg exited with ${result.code}: ${stderr.trim()}`);
  await rename(tmp, out);
  progress(`encoding test pattern: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return out;
}

export async function runDemo(o: DemoOptions, out: NodeJS.WritableStream, signal: AbortSignal): Promise<DemoSummary> {
  const log = childLogger('demo');
  signal.throwIfAborted();
  const pattern = testPattern(o.patternSize);
  let backend: ModelBackend;
  if (o.tiny) {
    const dir = o.tinyDir ?? tinyModelHome();
    await mkdir(dir, { recursive: true });
    await makeTinyModel(dir);
    log.warn({ dir }, 'using the generated tiny RANDOM-WEIGHT test model: replies only name the modalities that reached it');
    backend = backendFromOptions({ ...o, backend: 'transformers', modelDir: dir });
  } else {
    backend = backendFromOptions(o);
  }

  signal.throwIfAborted();
  const trickle = new TrickleServer({ port: 0, host: '127.0.0.1', basePath: '/ai/trickle/' });
  await trickle.listen();
  const id = `demo-${Date.now().toString(36)}`;
  const channels = {
    in: `${id}`,
    out: `${id}-out`,
    data: `${id}-data`,
    events: `${id}-events`,
    control: `${id}-control`,
  };
  trickle.createChannel(channels.in, 'video/MP2T');
  trickle.createChannel(channels.out, 'video/MP2T');
  trickle.createChannel(channels.data, 'application/jsonl');
  trickle.createChannel(channels.events, 'application/json');
  trickle.createChannel(channels.control, 'application/json');

  const server = await startRunnerServer({
    port: Number(o.port ?? 0),
    host: '127.0.0.1',
    backend,
    sessionFactory: createSessionFactory({ backend, logger: childLogger('pipeline') }),
    describeBackend: () => describeBackend(backend),
  }).catch(async (err: unknown) => {
    await trickle.close();
    throw err;
  });
  process.stderr.write(`runner: ${server.url}  trickle: ${trickle.url}  backend: ${backend.kind} ${backend.modelId}\n`);
  const viewer = o.watch
    ? await startViewer({
        channels: { output: trickle.channelUrl(channels.out), data: trickle.channelUrl(channels.data), events: trickle.channelUrl(channels.events) },
        streamName: id,
        runnerUrl: server.url,
        port: Number(o.watchPort ?? 0),
      }).catch(async (err: unknown) => {
        await server.close();
        await trickle.close();
        throw err;
      })
    : undefined;
  if (viewer) process.stderr.write(`viewer: ${viewer.url}\n`);

  const stopAll = new AbortController();
  const onAbort = () => stopAll.abort();
  // addEventListener never fires for a signal that is already aborted: check it too.
  if (signal.aborted) stopAll.abort();
  else signal.addEventListener('abort', onAbort, { once: true });
  let mediaDir: string | undefined;
  const durationS = o.duration ? Number(o.duration) : undefined;
  const timer = durationS ? setTimeout(() => stopAll.abort(), durationS * 1000) : undefined;

  const summary: DemoSummary = { records: 0, generations: 0, errors: 0, latencyMs: undefined, inputTokens: 0, outputTokens: 0 };
  const latencies: number[] = [];
  const wantCycles = o.cycles ? Number(o.cycles) : undefined;

  try {
    let input = o.input;
    if (!input && existsSync(patternCachePath(pattern))) input = patternCachePath(pattern);
    if (!input) {
      mediaDir = await mkdtemp(join(tmpdir(), 'gemma3n-trickle-demo-'));
      live.dirs.add(mediaDir);
      process.stderr.write(`encoding a ${pattern.durationS} s test pattern + ${pattern.toneHz} Hz tone (takes a few seconds; the model loads meanwhile)…\n`);
      input = await keepPattern(await encodeTestPattern(pattern, mediaDir, stopAll.signal, (line) => process.stderr.write(`${line}\n`)), pattern);
    }
    process.stderr.write(`input: ${input}${o.input ? '' : ' (generated test pattern + tone, looped)'}\n`);

    // Wait for the backend before starting, so the first records are not "still loading" errors.
    process.stderr.write('loading model backend…\n');
    await waitReady(backend, stopAll.signal, (line) => process.stderr.write(`${line}\n`));
    // Nothing new starts once stopping: an abort listener added now would never fire.
    stopAll.signal.throwIfAborted();

    const publishing = publishFile({
      file: input,
      url: trickle.channelUrl(channels.in),
      segmentSeconds: 2,
      loop: !o.input,
      signal: stopAll.signal,
    }).catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'input publisher ended'));

    const params: Record<string, unknown> = {
      prompt: o.prompt ?? 'Describe what you see and hear in one sentence.',
      generate_every_s: Number(o.every ?? 4),
      max_frames: Number(o.maxFrames ?? 4),
      max_new_tokens: 64,
    };
    const res = await fetch(`${server.url}/api/stream/start`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        gateway_request_id: id,
        subscribe_url: trickle.channelUrl(channels.in),
        publish_url: trickle.channelUrl(channels.out),
        data_url: trickle.channelUrl(channels.data),
        events_url: trickle.channelUrl(channels.events),
        control_url: trickle.channelUrl(channels.control),
        params,
      }),
    });
    if (res.status !== 200) throw new Error(`start failed: HTTP ${res.status} ${await res.text()}`);
    process.stderr.write(`stream ${id} started; records follow (Ctrl-C to stop)\n`);

    const sub = new TrickleSubscriber({ url: trickle.channelUrl(channels.data), start: 0 });
    if (stopAll.signal.aborted) void sub.close();
    else stopAll.signal.addEventListener('abort', () => void sub.close(), { once: true });
    let pending = '';
    outer: for (;;) {
      const seg = await sub.next().catch(() => null);
      if (!seg) break;
      for await (const chunk of seg.body) {
        pending += (chunk as Buffer).toString('utf8');
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (line.trim() === '') continue;
          out.write(`${line}\n`);
          summary.records += 1;
          tally(line, summary, latencies);
          if (wantCycles !== undefined && summary.generations + summary.errors >= wantCycles) break outer;
        }
      }
    }
    stopAll.abort();
    await fetch(`${server.url}/api/stream/stop`, { method: 'POST' }).catch(() => undefined);
    await sub.close();
    await publishing;
  } catch (err) {
    // Stopping by signal/--duration in any phase is a normal end: the summary follows.
    if (!stopAll.signal.aborted || err instanceof DemoError) throw err;
  } finally {
    if (timer) clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
    stopAll.abort();
    await viewer?.close();
    await server.close();
    await trickle.close();
    if (mediaDir) {
      await rm(mediaDir, { recursive: true, force: true });
      live.dirs.delete(mediaDir);
    }
  }
  summary.latencyMs = latencies.length ? { p50: percentile(latencies, 50), p95: percentile(latencies, 95) } : undefined;
  return summary;
}

function tally(line: string, summary: DemoSummary, latencies: number[]): void {
  try {
    const rec = JSON.parse(line) as {
      type?: string;
      stats?: { input_tokens?: number; timings_ms?: { total?: number } };
      usage?: { completion_tokens?: number };
    };
    if (rec.type === 'generation') {
      summary.generations += 1;
      if (typeof rec.stats?.timings_ms?.total === 'number') latencies.push(rec.stats.timings_ms.total);
      summary.inputTokens += rec.stats?.input_tokens ?? 0;
      summary.outputTokens += rec.usage?.completion_tokens ?? 0;
    } else if (rec.type === 'error') {
      summary.errors += 1;
    }
  } catch {
    // a line that is not JSON is printed but not counted
  }
}

/**
 * The status fields a backend may add beyond state/message (`permanent`: the failure will not clear
 * by itself). Read structurally so a backend that does not report them still gets an honest line.
 */
type StatusDetail = BackendStatus & { code?: string; permanent?: boolean };

/** One stderr line for a not-ready status that says truthfully whether anything is being retried. */
export function describeNotReady(s: StatusDetail): string {
  const what = s.message ?? 'no reason given';
  const code = s.code ? ` [${s.code}]` : '';
  if (s.state === 'loading') return `model backend loading: ${what}`;
  if (s.permanent === true) return `model backend failed and will not recover: ${what}${code}`;
  if (s.permanent === false) return `model backend not ready: ${what}${code} (still retrying)`;
  return `model backend not ready: ${what}${code}`;
}

/**
 * Polls status() until ready, printing each new reason once. Resolves on abort; rejects with a
 * DemoError when the backend says its failure is permanent (waiting longer would hang the demo).
 */
async function waitReady(backend: ModelBackend, signal: AbortSignal, print: (line: string) => void): Promise<void> {
  let last = '';
  while (!signal.aborted) {
    const s = backend.status() as StatusDetail;
    if (s.state === 'ready') return;
    const line = describeNotReady(s);
    if (line !== last) {
      last = line;
      print(line);
    }
    if (s.state === 'error' && s.permanent === true) {
      throw new DemoError(s.code ?? 'model_load_failed', `model backend failed: ${s.message ?? 'no reason given'}`);
    }
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, 200);
      signal.addEventListener('abort', done, { once: true });
      function done(): void {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
    });
  }
}

export function formatSummary(s: DemoSummary): string {
  const lat = s.latencyMs ? `p50 ${s.latencyMs.p50} ms, p95 ${s.latencyMs.p95} ms` : 'n/a';
  return [
    '--- demo summary ---',
    `cycles: ${s.generations} generation, ${s.errors} error (${s.records} records)`,
    `cycle latency: ${lat}`,
    `tokens: ${s.inputTokens} input, ${s.outputTokens} output`,
  ].join('\n');
}

/** The `demo` command's action: signals, logging, the run, the summary, the exit code. */
export async function demoCommand(o: DemoOptions): Promise<void> {
  // Signals first, before any child or temp file exists, so no phase runs unhandled.
  const ac = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (!ac.signal.aborted) {
      process.stderr.write(`${sig}: stopping (again to exit at once)…\n`);
      ac.abort();
      return;
    }
    process.stderr.write(`${sig}: exiting now\n`);
    process.exit(130); // the 'exit' hook below kills the demo's children and removes its temp dir
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', cleanUpNow);
  configureLogging(logConfigFrom(process.env), { fd: 2, defaultLevel: 'warn' });
  let summary: DemoSummary;
  try {
    summary = await runDemo(o, process.stdout, ac.signal);
  } catch (err) {
    // A signal during set-up (before the stream runs) is a normal stop with nothing to summarise.
    if (!ac.signal.aborted || err instanceof DemoError) throw err;
    summary = { records: 0, generations: 0, errors: 0, latencyMs: undefined, inputTokens: 0, outputTokens: 0 };
  }
  process.stdout.write(`${formatSummary(summary)}\n`);
  process.exit(0);
}
