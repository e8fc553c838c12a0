/**
 * `npm run bench -- pipeline`: the generation loop's own overhead per cycle, for 8 and 30 frames at
 * 512 px plus 4 s of audio, measured on the real path:
 *
 *   in:  frames + audio pushed into the rolling buffers → snapshot → gating → OpenAIBackend builds the
 *        request (base64 JPEG + WAV, JSON) → last request byte received by a loopback engine;
 *   out: the engine sends its last SSE byte → record built → the session's DataChannel (its own
 *        defaults: stamping, serialisation, queue, batching) → data-channel segment published to the
 *        embedded trickle server → line received by a real subscriber.
 *
 *   partials (partial_text on, 8 frames): the engine streams its first token, then the rest 30 ms
 *        later → the cycle's PartialEmitter (its defaults: the first partial goes out with the first
 *        token) → the same DataChannel → first partial line received; and the final record after it
 *        (engine's last byte → record line received), so partials are seen not to delay it.
 *
 * Baselines measured in the same run, on the same payloads:
 *   in:  base64 of the same JPEGs/WAV + JSON.stringify of the same chat body (the irreducible encoding);
 *   out: the same record line published with a bare TricklePublisher and read back (the transport).
 * Options: --iterations N (default 60), --warmup N (default 10).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseStartParams } from '../src/config/params.js';
import { encodeJpeg } from '../src/media/jpeg.js';
import { encodeWavPcm16 } from '../src/model/audio.js';
import { OpenAIBackend } from '../src/model/openai.js';
import type { ImageInput } from '../src/model/backend.js';
import { AudioBuffer, FrameBuffer } from '../src/pipeline/buffers.js';
import { runCycle } from '../src/pipeline/cycle.js';
import { PartialEmitter } from '../src/pipeline/partials.js';
import { systemClock } from '../src/util/time.js';
import { planCycle } from '../src/pipeline/plan.js';
import { DataChannel } from '../src/pipeline/data-channel.js';
import { serializeRecord } from '../src/pipeline/records.js';
import { rootLogger } from '../src/log.js';
import { TricklePublisher } from '../src/trickle/publisher.js';
import { TrickleServer } from '../src/trickle/server.js';
import { TrickleSubscriber } from '../src/trickle/subscriber.js';
import { percentile } from '../src/util/stats.js';

function arg(args: string[], name: string, def: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? Number(args[i + 1]) : def;
}


/** A 512×288 frame with moving content, so JPEG sizes are realistic (not a flat colour). */
function rgbFrame(i: number, w = 512, h = 288): Buffer {
  const b = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      b[o] = (x + i * 7) & 255;
      b[o + 1] = (y * 2 + i * 3) & 255;
      b[o + 2] = ((x ^ y) + i) & 255;
    }
  }
  return b;
}

/**
 * Loopback engine: records when the whole request body arrived, answers one SSE completion at once,
 * or (`streamed`) its first token at once and the rest `restAfterMs` later.
 */
class LoopbackEngine {
  readonly server = http.createServer();
  bodyDoneAt = 0;
  firstTokenAt = 0;
  lastByteAt = 0;
  bodyBytes = 0;
  streamed = false;
  restAfterMs = 30;
  async listen(): Promise<string> {
    this.server.on('request', (req, res) => {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => {
        this.bodyDoneAt = performance.now();
        this.bodyBytes = n;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const chunk = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`;
        const base = { id: 'x', object: 'chat.completion.chunk', created: 0, model: 'm' };
        const content = (text: string) => chunk({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: text }, finish_reason: null }] });
        const finish = () => {
          res.write(chunk({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: { prompt_tokens: 2000, completion_tokens: 10, total_tokens: 2010 } }));
          this.lastByteAt = performance.now();
          res.end('data: [DONE]\n\n');
        };
        if (!this.streamed) {
          res.write(content('A test pattern scrolls while a tone plays.'));
          return finish();
        }
        res.write(content('A '));
        this.firstTokenAt = performance.now();
        setTimeout(() => {
          res.write(content('test pattern scrolls while a tone plays.'));
          finish();
        }, this.restAfterMs);
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
  }
  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/**
 * Reads NDJSON lines from a channel with the arrival time of the chunk that completed each line and
 * the record's type: `nextLine()` waits for the next line of any type, `next(pred)` for the next of a
 * matching type, `take(type)` looks back over the lines seen since the last take.
 */
class LineReader {
  private seen: Array<{ t: number; type: string }> = [];
  private waiters: Array<{ pred: (type: string) => boolean; resolve: (t: number) => void }> = [];
  private readonly sub: TrickleSubscriber;
  private loop: Promise<void>;
  constructor(url: string) {
    const sub = new TrickleSubscriber({ url, start: -1 });
    this.sub = sub;
    this.loop = (async () => {
      for (;;) {
        const seg = await sub.next().catch(() => null);
        if (!seg) return;
        let rest = '';
        for await (const c of seg.body as AsyncIterable<Buffer>) {
          const t = performance.now();
          const parts = (rest + c.toString('utf8')).split('\n');
          rest = parts.pop() ?? '';
          for (const l of parts) this.arrived(t, String((JSON.parse(l) as { type?: unknown }).type));
        }
      }
    })();
  }
  private arrived(t: number, type: string): void {
    this.seen.push({ t, type });
    const i = this.waiters.findIndex((w) => w.pred(type));
    if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(t);
  }
  /** The arrival time of the next line, whatever its type. */
  nextLine(): Promise<number> {
    return this.next(() => true);
  }
  /** The arrival time of the next line whose type matches. */
  next(pred: (type: string) => boolean): Promise<number> {
    return new Promise((resolve) => this.waiters.push({ pred, resolve }));
  }
  /** The arrival time of the first line of `type` seen since the last take (all seen lines are forgotten). */
  take(type: string): number | undefined {
    const hit = this.seen.find((x) => x.type === type);
    this.seen = [];
    return hit?.t;
  }
  async close(): Promise<void> {
    await this.sub.close();
    await this.loop;
  }
}

export async function run(args: string[]): Promise<void> {
  const iterations = arg(args, 'iterations', 60);
  const warmup = arg(args, 'warmup', 10);
  const engine = new LoopbackEngine();
  const baseURL = await engine.listen();
  const trickle = new TrickleServer();
  await trickle.listen();

  const jpegs: Buffer[] = [];
  for (let i = 0; i < 30; i++) jpegs.push(await encodeJpeg(rgbFrame(i), 512, 288, 80));
  const audio = new Float32Array(4 * 16000).map((_, i) => 0.3 * Math.sin((2 * Math.PI * 440 * i) / 16000));
  process.stdout.write(`frames: 512x288 JPEG q80, mean ${Math.round(jpegs.reduce((a, b) => a + b.length, 0) / jpegs.length / 1024)} KiB; audio 4 s\n`);

  for (const frames of [8, 30]) {
    // Fresh channels per run: a new publisher starts at seq 0.
    const dataCh = `data-${frames}`;
    const rawCh = `raw-${frames}`;
    trickle.createChannel(dataCh, 'application/jsonl');
    trickle.createChannel(rawCh, 'application/jsonl');
    const backend = new OpenAIBackend({ baseURL, modelId: 'bench', capabilities: { maxImages: frames } });
    const params = parseStartParams({ max_frames: frames, max_input_tokens: 32768, audio_window_s: 4 }).params;
    // The data channel exactly as a session builds it (its defaults: what runs, batching wait included).
    const data = new DataChannel({ streamId: 'bench', url: trickle.channelUrl(dataCh), log: rootLogger(), onError: () => undefined, onPublished: () => undefined });
    const rawPub = new TricklePublisher({ url: trickle.channelUrl(rawCh), mimeType: 'application/jsonl' });
    const dataReader = new LineReader(trickle.channelUrl(dataCh));
    const rawReader = new LineReader(trickle.channelUrl(rawCh));
    const inMs: number[] = [];
    const inBase: number[] = [];
    const outMs: number[] = [];
    const outBase: number[] = [];
    let reqBytes = 0;
    let lineBytes = 0;
    for (let it = 0; it < warmup + iterations; it++) {
      // ---- in: media → request bytes on the wire
      const t0 = performance.now();
      const fb = new FrameBuffer(frames);
      const ab = new AudioBuffer(4);
      for (let i = 0; i < frames; i++) fb.push({ ptsMs: i * 333, width: 512, height: 288, jpeg: jpegs[i]! } satisfies ImageInput);
      for (let i = 0; i < 4; i++) ab.push({ startPtsMs: i * 1000, sampleRate: 16000, samples: audio.subarray(i * 16000, (i + 1) * 16000) });
      const planned = planCycle(
        { frames: fb.snapshot(), audio: ab.snapshot() },
        { params, capabilities: backend.capabilities, countTextTokens: (t) => backend.countTextTokens(t), history: [] },
      );
      if (planned.kind !== 'plan') throw new Error(`bench plan failed: ${planned.kind}`);
      const arrived = dataReader.nextLine();
      const result = await runCycle(planned.plan, {
        streamId: 'bench',
        cycle: { id: `bench-${it}`, seq: it },
        backend,
        signal: new AbortController().signal,
        correctionHistory: undefined,
        startedAt: t0,
      });
      data.publish(result.records);
      const tLine = await arrived;
      const line = serializeRecord(result.records[0]!);
      // ---- baselines on the same payloads
      const b0 = performance.now();
      const body = JSON.stringify({
        model: 'bench',
        messages: [
          {
            role: 'user',
            content: [
              ...jpegs.slice(0, frames).map((j) => ({ type: 'image_url', image_url: { url: `data:image/jpeg;base64,${j.toString('base64')}` } })),
              { type: 'input_audio', input_audio: { data: encodeWavPcm16(audio).toString('base64'), format: 'wav' } },
              { type: 'text', text: params.prompt },
            ],
          },
        ],
        max_tokens: 700,
        stream: true,
      });
      const b1 = performance.now();
      const rawArrived = rawReader.nextLine();
      const r0 = performance.now();
      await rawPub.publish(line);
      const tRaw = await rawArrived;
      if (it >= warmup) {
        inMs.push(engine.bodyDoneAt - t0);
        outMs.push(tLine - engine.lastByteAt);
        inBase.push(b1 - b0);
        outBase.push(tRaw - r0);
        reqBytes = engine.bodyBytes;
        lineBytes = Buffer.byteLength(line);
        void body;
      }
    }
    const row = (name: string, xs: number[], base: number[]) =>
      `  ${name.padEnd(34)} p50 ${percentile(xs, 50).toFixed(2).padStart(7)} ms  p99 ${percentile(xs, 99).toFixed(2).padStart(7)} ms   | baseline p50 ${percentile(base, 50).toFixed(2).padStart(7)} ms  p99 ${percentile(base, 99).toFixed(2).padStart(7)} ms   ratio(p50) ${(percentile(xs, 50) / percentile(base, 50)).toFixed(2)}x\n`;
    process.stdout.write(`\n${frames} frames @512px + 4 s audio (${iterations} cycles; request ${Math.round(reqBytes / 1024)} KiB, record ${lineBytes} B)\n`);
    process.stdout.write(row('in: media → request bytes out', inMs, inBase));
    process.stdout.write(row('out: response in → record on data', outMs, outBase));
    await data.close(2000);
    await rawPub.close();
    await Promise.all([dataReader.close(), rawReader.close()]);
    await backend.close();
  }
  await runPartials({ engine, baseURL, trickle, jpegs, audio, iterations, warmup });
  process.stdout.write('\nbaselines: in = base64 + JSON.stringify of the same chat body; out = bare TricklePublisher publish of the same line, read back\n');
  await trickle.close();
  await engine.close();
}

/**
 * partial_text on: engine's first token → first partial line readable on the data channel, and the
 * final record (engine's last byte → line readable) behind it, through the session's DataChannel and
 * the cycle's own PartialEmitter; baseline: the same partial line published bare and read back.
 */
async function runPartials(o: {
  engine: LoopbackEngine;
  baseURL: string;
  trickle: TrickleServer;
  jpegs: Buffer[];
  audio: Float32Array;
  iterations: number;
  warmup: number;
}): Promise<void> {
  const frames = 8;
  o.engine.streamed = true;
  o.trickle.createChannel('data-partials', 'application/jsonl');
  o.trickle.createChannel('raw-partials', 'application/jsonl');
  const backend = new OpenAIBackend({ baseURL: o.baseURL, modelId: 'bench', capabilities: { maxImages: frames } });
  const params = parseStartParams({ max_frames: frames, max_input_tokens: 32768, audio_window_s: 4, partial_text: true }).params;
  const data = new DataChannel({ streamId: 'bench', url: o.trickle.channelUrl('data-partials'), log: rootLogger(), onError: () => undefined, onPublished: () => undefined });
  const rawPub = new TricklePublisher({ url: o.trickle.channelUrl('raw-partials'), mimeType: 'application/jsonl' });
  const dataReader = new LineReader(o.trickle.channelUrl('data-partials'));
  const rawReader = new LineReader(o.trickle.channelUrl('raw-partials'));
  let superseded = 0;
  const partialMs: number[] = [];
  const finalMs: number[] = [];
  const base: number[] = [];
  for (let it = 0; it < o.warmup + o.iterations; it++) {
    const fb = new FrameBuffer(frames);
    const ab = new AudioBuffer(4);
    for (let i = 0; i < frames; i++) fb.push({ ptsMs: i * 333, width: 512, height: 288, jpeg: o.jpegs[i]! } satisfies ImageInput);
    for (let i = 0; i < 4; i++) ab.push({ startPtsMs: i * 1000, sampleRate: 16000, samples: o.audio.subarray(i * 16000, (i + 1) * 16000) });
    const planned = planCycle(
      { frames: fb.snapshot(), audio: ab.snapshot() },
      { params, capabilities: backend.capabilities, countTextTokens: (t) => backend.countTextTokens(t), history: [] },
    );
    if (planned.kind !== 'plan') throw new Error(`bench plan failed: ${planned.kind}`);
    const cycle = { id: `bench-p-${it}`, seq: it };
    let partialLine = '';
    const partials = new PartialEmitter({
      streamId: 'bench',
      cycle,
      intervalMs: params.partial_interval_ms,
      clock: systemClock,
      publish: (r) => {
        partialLine = JSON.stringify(r) + '\n';
        data.publish([r]);
      },
    });
    const finalLine = dataReader.next((type) => type === 'generation');
    const result = await runCycle(planned.plan, {
      streamId: 'bench',
      cycle,
      backend,
      signal: new AbortController().signal,
      correctionHistory: undefined,
      startedAt: performance.now(),
      partials,
    });
    data.publish(result.records);
    const tFinal = await finalLine;
    // A partial still waiting when the final record is queued is superseded by it (both chunks read
    // in one go under load): counted, and that cycle has no first-partial figure.
    const tPartial = dataReader.take('partial');
    const rawArrived = rawReader.nextLine();
    const r0 = performance.now();
    await rawPub.publish(partialLine);
    const tRaw = await rawArrived;
    if (partials.sent !== 1) throw new Error(`expected one partial per cycle, got ${partials.sent}`);
    if (it >= o.warmup) {
      if (tPartial === undefined) superseded++;
      else partialMs.push(tPartial - o.engine.firstTokenAt);
      finalMs.push(tFinal - o.engine.lastByteAt);
      base.push(tRaw - r0);
    }
  }
  const row = (name: string, xs: number[]) =>
    `  ${name.padEnd(34)} p50 ${percentile(xs, 50).toFixed(2).padStart(7)} ms  p99 ${percentile(xs, 99).toFixed(2).padStart(7)} ms   | baseline p50 ${percentile(base, 50).toFixed(2).padStart(7)} ms  p99 ${percentile(base, 99).toFixed(2).padStart(7)} ms   ratio(p50) ${(percentile(xs, 50) / percentile(base, 50)).toFixed(2)}x\n`;
  process.stdout.write(`\npartial_text on, ${frames} frames (${o.iterations} cycles; first token, rest ${o.engine.restAfterMs} ms later; partials superseded by their final record: ${superseded})\n`);
  process.stdout.write(row('first token → first partial line', partialMs));
  process.stdout.write(row('response in → final record (after)', finalMs));
  await data.close(2000);
  await rawPub.close();
  await Promise.all([dataReader.close(), rawReader.close()]);
  await backend.close();
  o.engine.streamed = false;
}
