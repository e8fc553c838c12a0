/**
 * Many streams in one process, end to end over real HTTP: the control API at capacity 4, real trickle
 * channels per stream on an embedded trickle server, real MPEG-TS decoded by real ffmpeg children, the
 * real OpenAI backend against the FAKE engine (a test double) behind the fair scheduler, exactly as
 * `serve` wires them. The fake engine echoes the `marker:<id>` it finds in each request's prompt, so
 * a record carrying another stream's marker would be cross-talk.
 *
 * Pinned: each stream gets its own records, heartbeats and byte-exact passthrough; params and stop by
 * header and by per-stream route touch only their stream; a fifth start answers 503; corrupt input or
 * dead channels on one stream leave the others intact; a stream's metric series go when it ends; and with a slow
 * engine (one request at a time) cycles are skipped and counted per stream, none is starved, the
 * scheduler's line stays bounded, each record says how long it waited, and closing the server (what
 * SIGTERM does) flushes every stream's records.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request, startTestServer } from '../helpers/server.js';
import { collectChannel, type ChannelCollector } from '../helpers/pipeline.js';
import { makeTestSegments, sha256 } from '../helpers/media.js';
import { startTrickleServer } from '../helpers/trickle.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { startFakeEngine, type FakeEngine, TEST_AUDIO_PAD_SAMPLES } from '../helpers/model.js';
import { OpenAIBackend } from '../../src/model/openai.js';
import { FairScheduler } from '../../src/model/fair-scheduler.js';
import { createSharedSessionFactory } from '../../src/pipeline/shared-session.js';
import { TricklePublisher } from '../../src/trickle/publisher.js';
import type { TrickleServer } from '../../src/trickle/server.js';
import type { RunnerServerHandle } from '../../src/server/index.js';
import type { StreamSession } from '../../src/pipeline/types.js';
import { rootLogger } from '../../src/log.js';

type Json = Record<string, unknown>;
const hdr = (id: string) => ({ 'x-stream-id': id });

/** Echoes the prompt's marker, so each record names the stream whose prompt it answered. */
const echoMarker = (summary: { texts: string[] }) => `echo ${/marker:(\S+)/.exec(summary.texts.join(' '))?.[1] ?? 'none'}`;

interface Rig {
  trickle: TrickleServer;
  engine: FakeEngine;
  backend: OpenAIBackend;
  scheduler: FairScheduler;
  srv: RunnerServerHandle;
  close(): Promise<void>;
}

async function startRig(opts: { maxInFlight: number; chunkDelayMs?: number }): Promise<Rig> {
  const trickle = await startTrickleServer();
  const engine = await startFakeEngine({ reply: echoMarker, keepBodies: 8, ...(opts.chunkDelayMs ? { chunkDelayMs: opts.chunkDelayMs } : {}) });
  const backend = new OpenAIBackend({ baseURL: engine.baseURL, capabilities: { maxImages: 2 }, audioPadSamples: TEST_AUDIO_PAD_SAMPLES });
  const scheduler = new FairScheduler(backend, { maxInFlight: opts.maxInFlight });
  const srv = await startTestServer({
    backend,
    capacity: 4,
    sessionFactory: createSharedSessionFactory({ logger: rootLogger(), heartbeatMs: 500, flushTimeoutMs: 5000 }, { scheduler, capacity: 4 }),
    describeScheduler: () => ({ ...scheduler.stats() }),
  });
  return {
    trickle,
    engine,
    backend,
    scheduler,
    srv,
    async close() {
      await srv.close();
      await backend.close();
      await engine.close();
      await trickle.close();
    },
  };
}

interface StreamIo {
  id: string;
  input: TricklePublisher;
  data: ChannelCollector;
  out: ChannelCollector;
  events: ChannelCollector;
  generations(): Json[];
  close(): Promise<void>;
}

/** Creates a stream's channels as an orchestrator does and starts it through the control API. */
async function startStream(rig: Rig, id: string, params: Json): Promise<StreamIo> {
  const t = rig.trickle;
  t.createChannel(id, 'video/MP2T');
  t.createChannel(`${id}-out`, 'video/MP2T');
  t.createChannel(`${id}-data`, 'application/jsonl');
  t.createChannel(`${id}-events`, 'application/json');
  const data = collectChannel(t.channelUrl(`${id}-data`));
  const out = collectChannel(t.channelUrl(`${id}-out`), { mode: 'raw' });
  const events = collectChannel(t.channelUrl(`${id}-events`), { mode: 'json' });
  const res = await request(
    rig.srv.url,
    'POST',
    '/stream/start',
    {
      gateway_request_id: id,
      subscribe_url: t.channelUrl(id),
      publish_url: t.channelUrl(`${id}-out`),
      data_url: t.channelUrl(`${id}-data`),
      events_url: t.channelUrl(`${id}-events`),
      params: { prompt: `Describe. marker:${id}`, ...params },
    },
    hdr(id),
  );
  assert.equal(res.status, 200, res.text);
  const input = new TricklePublisher({ url: t.channelUrl(id), mimeType: 'video/MP2T' });
  return {
    id,
    input,
    data,
    out,
    events,
    generations: () => data.records.filter((r) => r.type === 'generation'),
    async close() {
      await input.close();
      await Promise.all([data.stop(), out.stop(), events.stop()]);
    },
  };
}

/**
 * Publishes segment after segment, each once the previous one came out of the passthrough: the trickle
 * server keeps only the last few segments of a channel, so a reader starved of CPU (this machine is
 * shared) must never be lapped — a lost segment would be the test's doing, not the runner's.
 */
/** Publishes the segments one after another, each once the last has passed through, at least `paceMs` apart. */
async function feed(s: StreamIo, segments: Buffer[], paceMs = 0): Promise<void> {
  for (const seg of segments) {
    const n = s.out.segments.length;
    const next = sleep(paceMs);
    await s.input.publish(seg);
    await waitFor(`${s.id}: segment ${n} passed through`, () => s.out.segments.length > n, 20_000);
    await next;
  }
}

const LOOP = { generate_every_s: 1, target_fps: 2, max_frames: 2, audio_window_s: 1 };

describe('many streams in one process (capacity 4)', { timeout: 60_000 }, () => {
  let segments: Buffer[];
  before(async () => {
    segments = await makeTestSegments({ durationS: 8, fps: 10, width: 160, height: 120, gopS: 1, audio: 'aac' });
  });

  it('keeps four streams apart: own records, events and passthrough; params/stop by header and route; 503 at capacity; corrupt input contained', async () => {
    const rig = await startRig({ maxInFlight: 4 });
    const ids = ['s1', 's2', 's3', 's4'];
    const io: StreamIo[] = [];
    try {
      for (const id of ids) io.push(await startStream(rig, id, LOOP));
      const [s1, s2, s3, s4] = io as [StreamIo, StreamIo, StreamIo, StreamIo];
      const fifth = await request(rig.srv.url, 'POST', '/stream/start', { gateway_request_id: 's5' }, hdr('s5'));
      assert.equal(fifth.status, 503);
      assert.equal(fifth.body.message, 'Pipeline is still in use');

      // Phase 1: the first half of the clip on every stream at once.
      await Promise.all(io.map((s) => feed(s, segments.slice(0, 4))));
      await waitFor('two records on every stream', () => io.every((s) => s.generations().length >= 2), 20_000);

      // Params by header (s2) and by route (s3); corrupt input on s1.
      assert.equal((await request(rig.srv.url, 'POST', '/stream/params', { prompt: 'Again. marker:s2-b' }, hdr('s2'))).status, 200);
      assert.equal((await request(rig.srv.url, 'POST', '/streams/s3/params', { prompt: 'Again. marker:s3-b' })).status, 200);
      const s1Before = s1.generations().length;
      await feed(s1, [randomBytes(64 * 1024), segments[4]!.subarray(0, Math.floor(segments[4]!.length / 3))]);

      // Phase 2: the rest of the clip.
      await Promise.all(io.map((s) => feed(s, segments.slice(4))));
      await waitFor('s2 and s3 answer their new prompts', () =>
        s2.generations().some((r) => r.text === 'echo s2-b') && s3.generations().some((r) => r.text === 'echo s3-b'), 20_000);
      await waitFor('every stream past phase 1', () => [s2, s3, s4].every((s) => s.out.segments.length >= segments.length), 20_000);

      // No cross-talk: every record on a stream's data channel is that stream's, answering its prompts.
      const allowed: Record<string, string[]> = { s1: ['echo s1'], s2: ['echo s2', 'echo s2-b'], s3: ['echo s3', 'echo s3-b'], s4: ['echo s4'] };
      for (const s of io) {
        for (const r of s.data.records) assert.equal(r.stream_id, s.id, `${s.id} carries a record of ${String(r.stream_id)}`);
        for (const r of s.generations()) assert.ok(allowed[s.id]!.includes(String(r.text)), `${s.id} got "${String(r.text)}"`);
        for (const r of s.generations()) assert.equal(typeof (r.stats as { timings_ms: Json }).timings_ms.queue, 'number');
      }
      assert.ok(!s4.generations().some((r) => r.text !== 'echo s4'), 'params of s2/s3 never reached s4');
      // Passthrough of the clean streams is byte-exact and complete.
      for (const s of [s2, s3, s4]) {
        assert.deepEqual(s.out.segments.slice(0, segments.length).map((x) => sha256(Buffer.from(x, 'latin1'))), segments.map(sha256), `${s.id} passthrough`);
      }
      // The corrupt stream is still running, and its own events say what happened to it.
      await waitFor('s1 records after its corrupt input', () => s1.generations().length > s1Before, 20_000);
      const s1Status = await request(rig.srv.url, 'GET', '/streams/s1/status');
      assert.equal(s1Status.body.client_running, true);
      // Each events channel carries its own stream's heartbeats.
      for (const s of io) {
        const hbs = s.events.records.filter((r) => (r.event as Json).type === 'heartbeat');
        assert.ok(hbs.length >= 1, `${s.id} heartbeats`);
        for (const e of s.events.records) assert.equal((e.event as Json).stream_id, s.id);
      }

      // Stop s4 by header and s1 by route: only they end.
      const metricsHas = async (id: string) => (await request(rig.srv.url, 'GET', '/metrics')).text.includes(`stream_id="${id}"`);
      assert.ok(await metricsHas('s4'));
      assert.equal((await request(rig.srv.url, 'POST', '/stream/stop', undefined, hdr('s4'))).status, 200);
      assert.equal((await request(rig.srv.url, 'POST', '/streams/s1/stop')).status, 200);
      const list = await request(rig.srv.url, 'GET', '/streams');
      assert.deepEqual((list.body.streams as Json[]).map((s) => s.stream_id), ['s2', 's3']);
      await waitFor('s4 metric series removed', async () => !(await metricsHas('s4')));
      assert.ok(await metricsHas('s2'), 'the running streams keep theirs');
      // Dead channels on one stream: s3's data and input channels vanish; s2 carries on regardless.
      rig.trickle.deleteChannel('s3-data');
      rig.trickle.deleteChannel('s3');
      const s2Count = s2.generations().length;
      await feed(s2, segments.slice(0, 3)); // the clip again: timestamps restart, a new window begins
      await waitFor('s2 records after s3 lost its channels', () => s2.generations().length > s2Count, 15_000);
      await waitFor('s3 ended on its own', async () => ((await request(rig.srv.url, 'GET', '/streams')).body.active_streams as number) === 1, 15_000);
    } finally {
      await rig.close();
      for (const s of io) await s.close();
    }
  });

  it('with a slow engine, skips and counts per stream, starves none, keeps the line bounded, and flushes every stream at shutdown', async () => {
    // One request at a time, each ~150 ms (3 pieces × 50 ms): far less than 4 streams × 2 cycles/s need.
    const rig = await startRig({ maxInFlight: 1, chunkDelayMs: 50 });
    const io: StreamIo[] = [];
    const sessions: StreamSession[] = [];
    try {
      for (const id of ['f1', 'f2', 'f3', 'f4']) io.push(await startStream(rig, id, { ...LOOP, generate_every_s: 0.5 }));
      for (const e of rig.srv.runner.streams()) sessions.push(e.session);
      // Paced (2 s of media per wall second): cycles come due on stream time, so media fed all at once
      // would be over before the one-at-a-time engine had answered three cycles of every stream.
      await Promise.all(io.map((s) => feed(s, segments, 500)));
      await waitFor('three records on every stream', () => io.every((s) => s.generations().length >= 3), 30_000);
      const st = rig.scheduler.stats();
      assert.equal(st.max_in_flight_seen, 1, 'never more than MAX_REQUESTS_IN_FLIGHT at the engine');
      assert.ok(st.max_waiting_seen <= 4, `the line held at most one request per stream (saw ${st.max_waiting_seen})`);
      const status = await request(rig.srv.url, 'GET', '/stream/status');
      assert.equal((status.body.model_scheduler as Json).max_in_flight, 1);
      // Shutdown (what SIGTERM runs): every stream stops and flushes what it queued.
      await rig.srv.close();
      const queued = sessions.map((s) => s.status().counters.records_queued ?? 0);
      await waitFor('every queued record read back', () => io.every((s, i) => s.data.records.length >= queued[i]!), 10_000);
      const skipped = sessions.map((s) => s.status().counters.cycles_skipped ?? 0);
      assert.ok(skipped.reduce((a, b) => a + b, 0) > 0, `cycles were skipped and counted (${skipped.join(', ')})`);
      const stamped = io.map((s) => s.generations().reduce((n, r) => n + Number((r.stats as Json).skipped_cycles ?? 0), 0));
      assert.ok(stamped.reduce((a, b) => a + b, 0) > 0, 'records report the skips');
      const counts = io.map((s) => s.generations().length);
      assert.ok(Math.min(...counts) * 2 >= Math.max(...counts), `no stream starved: generations ${counts.join(', ')}`);
      const waited = io.flatMap((s) => s.generations().map((r) => Number((r.stats as { timings_ms: Json }).timings_ms.queue)));
      assert.ok(waited.some((ms) => ms > 0), 'some requests waited their turn, and their records say so');
    } finally {
      await rig.close();
      for (const s of io) await s.close();
    }
  });
});
