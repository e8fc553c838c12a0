/**
 * Leak detector and soak: many start/stop cycles on REUSED channel names through the real control API
 * (runner server on loopback, embedded trickle server, real media through ffmpeg, the real OpenAIBackend
 * against the fake OpenAI-compatible engine). Open file descriptors (/proc/self/fd) and RSS must stay
 * flat: every stream's sockets, ffmpeg pipes, timers and publishers are released at stop.
 *
 * The npm-test-sized run does 10 cycles in seconds; the soak (100 cycles over ≥ 10 minutes) runs only
 * with TEST_LONG=1 and is skipped by design otherwise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { OpenAIBackend } from '../../src/model/openai.js';
import { createSessionFactory } from '../../src/pipeline/session.js';
import { TricklePublisher } from '../../src/trickle/publisher.js';
import { TrickleServer } from '../../src/trickle/server.js';
import { rootLogger } from '../../src/log.js';
import { makeTestSegments } from '../helpers/media.js';
import { startFakeEngine, TEST_AUDIO_PAD_SAMPLES } from '../helpers/model.js';
import { collectChannel } from '../helpers/pipeline.js';
import { request, startTestServer } from '../helpers/server.js';
import { sleep, waitFor } from '../helpers/wait.js';

const LONG = process.env.TEST_LONG === '1';

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

interface SoakResult {
  fds: number[];
  rss: number[];
  records: number;
}

async function startStopCycles(cycles: number, opts: { minCycleMs: number }): Promise<SoakResult> {
  // Bodies are ~1.5 MB each (frames + 30 s of padded audio): keeping all would grow this process, not the runner.
  const engine = await startFakeEngine({ keepBodies: 4 });
  const trickle = new TrickleServer();
  await trickle.listen();
  const backend = new OpenAIBackend({ baseURL: engine.baseURL, capabilities: { maxImages: 8 }, audioPadSamples: TEST_AUDIO_PAD_SAMPLES });
  const srv = await startTestServer({ backend, sessionFactory: createSessionFactory({ backend, logger: rootLogger(), flushTimeoutMs: 2000 }) });
  trickle.createChannel('s-data', 'application/jsonl');
  trickle.createChannel('s-events', 'application/json');
  const data = collectChannel(trickle.channelUrl('s-data'));
  const segs = await makeTestSegments({ durationS: 2, fps: 10, width: 160, height: 120, gopS: 1, audio: 'aac' });
  const fds: number[] = [];
  const rss: number[] = [];
  try {
    await waitFor('engine warm-up', async () => (await request(srv.url, 'GET', '/health')).body.status === 'IDLE');
    for (let i = 0; i < cycles; i++) {
      const t0 = Date.now();
      // Same names every time, as an orchestrator reusing a stream's channel names; media channels
      // are re-created per stream, data and events stay (with their subscriber).
      for (const [name, mime] of [['s', 'video/MP2T'], ['s-out', 'video/MP2T']] as const) {
        if (trickle.hasChannel(name)) trickle.deleteChannel(name);
        trickle.createChannel(name, mime);
      }
      const start = await request(srv.url, 'POST', '/stream/start', {
        gateway_request_id: `soak-${i}`,
        subscribe_url: trickle.channelUrl('s'),
        publish_url: trickle.channelUrl('s-out'),
        data_url: trickle.channelUrl('s-data'),
        events_url: trickle.channelUrl('s-events'),
        params: { generate_every_s: 1 },
      });
      assert.equal(start.status, 200, start.text);
      const input = new TricklePublisher({ url: trickle.channelUrl('s'), mimeType: 'video/MP2T' });
      for (const seg of segs) await input.publish(seg);
      await waitFor(`stream ${i} to read its input`, async () => {
        const st = await request(srv.url, 'GET', '/stream/status');
        const counters = (st.body.stream as { counters?: Record<string, number> } | undefined)?.counters;
        return (counters?.segments_in ?? 0) >= 1;
      }, 10_000);
      const left = opts.minCycleMs - (Date.now() - t0);
      if (left > 0) await sleep(left);
      const stop = await request(srv.url, 'POST', '/stream/stop');
      assert.equal(stop.status, 200, stop.text);
      await waitFor(`stream ${i} to end`, async () => (await request(srv.url, 'GET', '/health')).body.status === 'IDLE', 10_000);
      await input.close();
      fds.push(openFds());
      rss.push(process.memoryUsage().rss);
    }
    return { fds, rss, records: data.records.length };
  } finally {
    await data.stop();
    await srv.close();
    await backend.close();
    await trickle.close();
    await engine.close();
  }
}

/** Growth from the settled level (after the first quarter of the cycles) to the end. */
function growth(xs: number[]): number {
  const settled = Math.max(...xs.slice(0, Math.max(2, Math.floor(xs.length / 4))));
  return Math.max(...xs.slice(Math.floor(xs.length / 2))) - settled;
}

test('leak detector: 10 start/stop cycles on reused channel names through the control API leave open fds at their baseline', { timeout: 120_000 }, async () => {
  const r = await startStopCycles(10, { minCycleMs: 0 });
  assert.ok(growth(r.fds) <= 6, `open fds per cycle: ${r.fds.join(' ')}`);
});

test(
  'soak (TEST_LONG=1 only; skipped by design otherwise): 100 start/stop cycles over 10 minutes keep RSS and open fds flat',
  { skip: !LONG && 'set TEST_LONG=1 to run the soak', timeout: 20 * 60_000 },
  async () => {
    const r = await startStopCycles(100, { minCycleMs: 6_000 });
    assert.ok(r.records > 0, 'the streams produced records');
    assert.ok(growth(r.fds) <= 6, `open fds per cycle: ${r.fds.join(' ')}`);
    assert.ok(growth(r.rss) <= 64 * 1024 * 1024, `RSS (MiB) per cycle: ${r.rss.map((b) => Math.round(b / 1048576)).join(' ')}`);
  },
);
