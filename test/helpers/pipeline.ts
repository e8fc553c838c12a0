/**
 * Test helpers for the generation loop: a trickle channel reader that collects whole segments and
 * their NDJSON lines / JSON bodies, and a harness around one session. Real HTTP throughout (the embedded trickle
 * server and the real TrickleSubscriber).
 */
import { TrickleSubscriber } from '../../src/trickle/subscriber.js';
import { TrickleServer } from '../../src/trickle/server.js';
import { TricklePublisher } from '../../src/trickle/publisher.js';
import { parseStartParams, type ParamsInput } from '../../src/config/params.js';
import type { ModelBackend } from '../../src/model/backend.js';
import { OpenAIBackend } from '../../src/model/openai.js';
import { startFakeEngine } from '../../src/model/testing/fake-engine.js';
import { createSessionFactory, type PipelineSession, type SessionDeps } from '../../src/pipeline/session.js';
import { sleep, waitFor } from './wait.js';
import { TEST_AUDIO_PAD_SAMPLES } from './model.js';

export interface ChannelCollector {
  /** Each segment's body, in arrival order. */
  segments: string[];
  /** Every line of every segment (for NDJSON channels). */
  lines: string[];
  /** Parsed lines. */
  records: Array<Record<string, unknown>>;
  /** Resolves when the subscription ended (404, channel closed, or stop()). */
  ended: Promise<void>;
  stop(): Promise<void>;
}

async function readAll(body: NodeJS.ReadableStream, encoding: BufferEncoding): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(parts).toString(encoding);
}

/**
 * Reads a channel from `start` until it ends; `mode` says whether bodies are NDJSON, one JSON each,
 * or anything else ('raw': segments only, e.g. MPEG-TS passthrough, latin1 so lengths are bytes).
 */
export function collectChannel(url: string, opts: { start?: number; mode?: 'ndjson' | 'json' | 'raw' } = {}): ChannelCollector {
  const sub = new TrickleSubscriber({ url, start: opts.start ?? 0, retryDelayMs: 50, maxRetries: 1000 });
  const c: ChannelCollector = {
    segments: [],
    lines: [],
    records: [],
    ended: Promise.resolve(),
    stop: async () => {
      await sub.close();
      await c.ended;
    },
  };
  c.ended = (async () => {
    try {
      for (;;) {
        const seg = await sub.next();
        if (!seg) return;
        const text = await readAll(seg.body, opts.mode === 'raw' ? 'latin1' : 'utf8');
        c.segments.push(text);
        if (opts.mode === 'raw') continue;
        if (opts.mode === 'json') {
          if (text.trim() !== '') c.records.push(JSON.parse(text) as Record<string, unknown>);
          continue;
        }
        for (const line of text.split('\n')) {
          if (line === '') continue;
          c.lines.push(line);
          c.records.push(JSON.parse(line) as Record<string, unknown>);
        }
      }
    } catch {
      // closed mid-body by stop(): whatever arrived is kept
    }
  })();
  return c;
}

export interface PipelineHarness {
  trickle: TrickleServer;
  session: PipelineSession;
  urls: { subscribeUrl: string; publishUrl: string; dataUrl: string; controlUrl: string; eventsUrl: string };
  data: ChannelCollector;
  events: ChannelCollector;
  /** Publisher of the input channel (media). */
  input: TricklePublisher;
  /** Publisher of the control channel. */
  control: TricklePublisher;
  /** Publishes each buffer as one input segment, pausing `paceMs` between segments. */
  feed(segments: Buffer[], paceMs?: number): Promise<void>;
  /**
   * Like feed, but each segment only once the session has read the last one and no cycle is running:
   * however slow the machine, the loop is idle when stream time reaches the next due point, so a
   * cadence check sees every cycle instead of one skipped for a cycle still in flight.
   */
  feedUnhurried(segments: Buffer[], paceMs?: number): Promise<void>;
  /** Ends the input the way an orchestrator does: the channel is deleted. */
  endInput(): Promise<void>;
  generations(): Array<Record<string, unknown>>;
  eventTypes(): string[];
  close(): Promise<void>;
}

/**
 * A StreamSession wired to an embedded trickle server with all five channels, a real media publisher
 * on the input and real subscribers on data and events.
 */
export async function startPipelineHarness(opts: {
  backend: ModelBackend;
  params?: ParamsInput;
  deps?: Partial<SessionDeps>;
  streamId?: string;
  /** Leave out the passthrough output channel. */
  noOutput?: boolean;
  /** Publish this on the control channel before the session starts (re-read at start). */
  cachedControl?: string;
}): Promise<PipelineHarness> {
  const trickle = new TrickleServer();
  await trickle.listen();
  const names = { in: 'in', out: 'in-out', data: 'in-data', ctl: 'in-control', ev: 'in-events' };
  trickle.createChannel(names.in, 'video/MP2T');
  trickle.createChannel(names.out, 'video/MP2T');
  trickle.createChannel(names.data, 'application/jsonl');
  trickle.createChannel(names.ctl, 'application/json');
  trickle.createChannel(names.ev, 'application/json');
  const urls = {
    subscribeUrl: trickle.channelUrl(names.in),
    publishUrl: trickle.channelUrl(names.out),
    dataUrl: trickle.channelUrl(names.data),
    controlUrl: trickle.channelUrl(names.ctl),
    eventsUrl: trickle.channelUrl(names.ev),
  };
  const input = new TricklePublisher({ url: urls.subscribeUrl, mimeType: 'video/MP2T' });
  const control = new TricklePublisher({ url: urls.controlUrl, mimeType: 'application/json' });
  if (opts.cachedControl !== undefined) await control.publish(opts.cachedControl);
  const data = collectChannel(urls.dataUrl);
  const events = collectChannel(urls.eventsUrl, { mode: 'json' });
  const factory = createSessionFactory({ backend: opts.backend, heartbeatMs: 10_000, flushTimeoutMs: 3000, ...opts.deps });
  const parsed = parseStartParams(opts.params ?? {});
  const session = factory({
    streamId: opts.streamId ?? 'req-test-1',
    ...urls,
    ...(opts.noOutput ? { publishUrl: undefined } : {}),
    params: parsed.params,
    extraParams: parsed.extra,
  }) as PipelineSession;
  await session.start();
  return {
    trickle,
    session,
    urls,
    data,
    events,
    input,
    control,
    async feed(segments, paceMs = 0) {
      for (const seg of segments) {
        await input.publish(seg);
        if (paceMs > 0) await sleep(paceMs);
      }
    },
    async feedUnhurried(segments, paceMs = 0) {
      for (const seg of segments) {
        const read = session.status().counters.segments_in ?? 0;
        await input.publish(seg);
        await waitFor('the segment read and no cycle running', () => {
          const c = session.status().counters;
          return (c.segments_in ?? 0) > read && (c.cycles_in_flight ?? 0) === 0;
        }, 20_000, 10);
        if (paceMs > 0) await sleep(paceMs);
      }
    },
    async endInput() {
      trickle.deleteChannel(names.in);
    },
    generations: () => data.records.filter((r) => r.type === 'generation'),
    eventTypes: () => events.records.map((r) => (r.event as { type: string }).type),
    async close() {
      await session.stop('shutdown');
      await session.done;
      await input.close();
      await control.close();
      await trickle.close();
      await data.stop();
      await events.stop();
    },
  };
}

export interface LoopingStream {
  session: PipelineSession;
  /** Generation records' cycle_seq, across every collector given to `seqs`. */
  seqs(collectors: ChannelCollector[]): number[];
  completed(): number;
  /** Every record published so far has been read (by `collectors`) and none is in flight. */
  settled(collectors: ChannelCollector[], atLeast: number): boolean;
  /** Stops feeding, stops the session, closes the input side and the engine. */
  close(): Promise<void>;
}

/**
 * A session against the fake engine whose input (its own trickle server) loops one clip at
 * `paceMs` per segment and whose data channel is `dataUrl` — for the data-channel fault tests, which
 * take the data server down and bring it back.
 */
export async function startLoopingStream(opts: { streamId: string; dataUrl: string; clip: Buffer[]; paceMs: number }): Promise<LoopingStream> {
  const engine = await startFakeEngine();
  const backend = new OpenAIBackend({ baseURL: engine.baseURL, capabilities: { maxImages: 4 }, audioPadSamples: TEST_AUDIO_PAD_SAMPLES });
  const media = new TrickleServer({ port: 0, host: '127.0.0.1' });
  await media.listen();
  media.createChannel('in', 'video/MP2T');
  const session = createSessionFactory({ backend, flushTimeoutMs: 15_000 })({
    streamId: opts.streamId,
    subscribeUrl: media.channelUrl('in'),
    dataUrl: opts.dataUrl,
    params: parseStartParams({ generate_every_s: 1, target_fps: 2, max_frames: 2, audio_window_s: 1 }).params,
    extraParams: {},
  }) as PipelineSession;
  const input = new TricklePublisher({ url: media.channelUrl('in'), mimeType: 'video/MP2T' });
  await session.start();
  let feeding = true;
  // Continuous input: the clip over and over (timestamps restart each loop).
  const feeder = (async () => {
    while (feeding) {
      for (const seg of opts.clip) {
        if (!feeding) break;
        await input.publish(seg).catch(() => undefined);
        await sleep(opts.paceMs);
      }
    }
  })();
  const seqs = (collectors: ChannelCollector[]): number[] =>
    collectors.flatMap((c) => c.records.filter((r) => r.type === 'generation').map((r) => r.cycle_seq as number));
  return {
    session,
    seqs,
    completed: () => session.status().counters.cycles_completed ?? 0,
    settled: (collectors, atLeast) => {
      const c = session.status().counters;
      const n = seqs(collectors).length;
      return n >= atLeast && n === (c.records_published ?? 0) && (c.records_waiting ?? 0) === 0;
    },
    close: async () => {
      feeding = false;
      await feeder;
      await session.stop('shutdown');
      await session.done;
      await input.close();
      await media.close();
      await backend.close();
      await engine.close();
    },
  };
}
