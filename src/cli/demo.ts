/**
 * `gemma3n-trickle demo`: everything on one machine, through the real parts — an embedded trickle
 * server, the runner's control API, a real-time publisher of a media file (or a generated test pattern
 * with a tone), and a data-channel subscriber that prints each record as one JSON line on stdout.
 * A summary (cycles, latency p50/p95, tokens) follows on exit: Ctrl-C, `--cycles N`, `--duration S`,
 * or the end of a non-looping input. Logs go to stderr so stdout stays NDJSON + the summary.
 */
import type { Command } from 'commander';
import { mkdir } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { childLogger, configureRootLogger } from '../log.js';
import { percentile } from '../util/stats.js';
import { errorMessage } from '../errors.js';
import { generateTestStream } from '../media/test-source.js';
import { describeBackend, makeTinyModel } from '../model/index.js';
import type { ModelBackend } from '../model/backend.js';
import { createSessionFactory } from '../pipeline/session.js';
import { startRunnerServer } from '../server/index.js';
import { publishFile } from '../trickle/file-publisher.js';
import { TrickleServer } from '../trickle/server.js';
import { TrickleSubscriber } from '../trickle/subscriber.js';
import { addBackendOptions, backendFromOptions, type ServeOptions } from './serve.js';

export interface DemoOptions extends ServeOptions {
  input?: string;
  tiny?: boolean;
  cycles?: string;
  duration?: string;
  prompt?: string;
  every?: string;
  maxFrames?: string;
  port?: string;
  tinyDir?: string;
}

export interface DemoSummary {
  records: number;
  generations: number;
  errors: number;
  latencyMs: { p50: number; p95: number } | undefined;
  inputTokens: number;
  outputTokens: number;
}


/** Where `--tiny` keeps its generated model between runs. */
function tinyModelHome(): string {
  const base = process.env.XDG_CACHE_HOME || (homedir() ? join(homedir(), '.cache') : tmpdir());
  return join(base, 'gemma3n-trickle', 'tiny-random-gemma3n');
}

export async function runDemo(o: DemoOptions, out: NodeJS.WritableStream, signal: AbortSignal): Promise<DemoSummary> {
  const log = childLogger('demo');
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
  });
  process.stderr.write(`runner: ${server.url}  trickle: ${trickle.url}  backend: ${backend.kind} ${backend.modelId}\n`);

  const stopAll = new AbortController();
  const onAbort = () => stopAll.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  const durationS = o.duration ? Number(o.duration) : undefined;
  const timer = durationS ? setTimeout(() => stopAll.abort(), durationS * 1000) : undefined;

  const summary: DemoSummary = { records: 0, generations: 0, errors: 0, latencyMs: undefined, inputTokens: 0, outputTokens: 0 };
  const latencies: number[] = [];
  const wantCycles = o.cycles ? Number(o.cycles) : undefined;

  try {
    const input =
      o.input ??
      (await generateTestStream({ durationS: 20, fps: 30, width: 1280, height: 720, gopS: 2, audio: 'aac', toneHz: 440 }));
    process.stderr.write(`input: ${input}${o.input ? '' : ' (generated test pattern + 440 Hz tone, looped)'}\n`);

    // Wait for the backend before starting, so the first records are not "still loading" errors.
    process.stderr.write('loading model backend…\n');
    await waitReady(backend, stopAll.signal);

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
    stopAll.signal.addEventListener('abort', () => void sub.close(), { once: true });
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
  } finally {
    if (timer) clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
    stopAll.abort();
    await server.close();
    await trickle.close();
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

async function waitReady(backend: ModelBackend, signal: AbortSignal): Promise<void> {
  let lastMessage = '';
  while (!signal.aborted) {
    const s = backend.status();
    if (s.state === 'ready') return;
    if (s.state === 'error' && s.message && s.message !== lastMessage) {
      lastMessage = s.message;
      process.stderr.write(`model backend not ready: ${s.message} (retrying)\n`);
    }
    await new Promise((r) => setTimeout(r, 200));
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

export function registerDemoCommand(program: Command): void {
  const cmd = program
    .command('demo')
    .description('Run everything locally (embedded trickle server + runner + publisher) and print records live')
    .option('--input <file>', 'media file to publish (default: a generated moving test pattern with a tone, looped)')
    .option('--tiny', 'use the generated tiny random-weight test model (offline; replies name the modalities)')
    .option('--cycles <n>', 'stop after N records')
    .option('--duration <s>', 'stop after S seconds')
    .option('--prompt <text>', 'prompt for the stream')
    .option('--every <s>', 'generate_every_s', '4')
    .option('--max-frames <n>', 'max_frames', '4')
    .option('--port <port>', 'control API port (default: ephemeral)', '0');
  addBackendOptions(cmd).action(async (o: DemoOptions) => {
    configureRootLogger({ fd: 2, level: process.env.LOG_LEVEL ?? 'warn' });
    const ac = new AbortController();
    const onSignal = () => ac.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const summary = await runDemo(o, process.stdout, ac.signal);
    process.stdout.write(`${formatSummary(summary)}\n`);
    process.exit(0);
  });
}
