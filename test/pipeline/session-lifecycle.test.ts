/**
 * Session lifecycle at the session level, over real HTTP (embedded trickle server, real publishers and
 * subscribers, real ffmpeg media, the real OpenAIBackend against the fake OpenAI-compatible engine):
 * data-channel keepalive wiring, the output publisher's owner closing it, no data_url, bounded
 * params_updated (the restart on a reused data channel is in session-restart.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseParamsUpdate, parseStartParams } from '../../src/config/params.js';
import { createSessionFactory } from '../../src/pipeline/session.js';
import { TrickleServer } from '../../src/trickle/server.js';
import { makeTestSegments } from '../helpers/media.js';
import { fakeEngineBackend } from '../helpers/model.js';
import { collectChannel, startPipelineHarness } from '../helpers/pipeline.js';
import { waitFor } from '../helpers/wait.js';

const backendFor = fakeEngineBackend;

test('a session with nothing to publish keeps its data channel alive with zero-byte segments (dataKeepaliveMs)', async (t) => {
  const backend = await backendFor(t);
  const h = await startPipelineHarness({ backend, params: { generate_every_s: 600 }, deps: { dataKeepaliveMs: 100 } });
  t.after(() => h.close());
  await waitFor('three keepalive segments', () => h.data.segments.filter((s) => s === '').length >= 3, 5000);
  assert.equal(h.data.records.length, 0, 'a keepalive carries no line');
  assert.ok((h.session.status().counters.cycles_started ?? 0) === 0);
  assert.ok((h.session.status().counters.data_keepalives ?? 0) >= 3, 'counted in the status counters');
});

test('stop closes the passthrough output publisher the session created: output readers see end of stream (the channel is deleted, as go-livepeer\'s publisher does)', async (t) => {
  const backend = await backendFor(t);
  const segs = await makeTestSegments({ durationS: 2, fps: 10, width: 160, height: 120, gopS: 1, audio: 'aac' });
  const h = await startPipelineHarness({ backend, params: { generate_every_s: 60 } });
  const out = collectChannel(h.urls.publishUrl, { mode: 'raw' });
  t.after(async () => {
    await out.stop();
  });
  await h.feed(segs);
  await waitFor('the passthrough segments', () => out.segments.filter((s) => s.length > 0).length >= segs.length, 10_000);
  let ended = false;
  void out.ended.then(() => (ended = true));
  await h.session.stop('stopped');
  await h.session.done;
  // An unclosed publisher leaves its next segment preconnected forever and a reader waits on it;
  // a zero-byte end alone reads as one more (empty) segment. Deleting the channel is the end of stream.
  await waitFor('the output reader to see end of stream', () => ended, 5000);
  assert.equal(out.segments.filter((s) => s.length > 0).length, segs.length, 'every input segment passed through');
  await h.close();
});

test('a start without data_url warns and says data_channel none in its status', async (t) => {
  const backend = await backendFor(t);
  const factory = createSessionFactory({ backend });
  const s = factory({ streamId: 'no-data', params: parseStartParams({}).params, extraParams: {} });
  await s.start();
  assert.equal(s.status().data_channel, 'none');
  await s.stop('stopped');
  const trickle = new TrickleServer();
  await trickle.listen();
  t.after(() => trickle.close());
  trickle.createChannel('d', 'application/jsonl');
  const s2 = factory({ streamId: 'with-data', dataUrl: trickle.channelUrl('d'), params: parseStartParams({}).params, extraParams: {} });
  await s2.start();
  assert.equal(s2.status().data_channel, 'trickle');
  await s2.stop('stopped');
});

test('params_updated does not echo a large update: known keys with values, a large unknown value by name only', async (t) => {
  const backend = await backendFor(t);
  const h = await startPipelineHarness({ backend, params: { generate_every_s: 60 } });
  t.after(() => h.close());
  // 12 KiB: inside the per-stream unknown-params limit (16 KiB), far past what an event echoes.
  const raw = { prompt: 'describe', blob: 'x'.repeat(12 * 1024) };
  const next = parseParamsUpdate(h.session.params(), raw);
  h.session.updateParams(next.params, next.changed, raw);
  await waitFor('params_updated', () => h.eventTypes().includes('params_updated'), 5000);
  const i = h.eventTypes().indexOf('params_updated');
  const seg = h.events.segments.filter((s) => s.trim() !== '')[i]!;
  assert.ok(seg.length < 4096, `event body is ${seg.length} bytes`);
  const ev = (h.events.records[i] as { event: Record<string, unknown> }).event;
  assert.deepEqual(ev.changed, ['prompt', 'blob']);
  assert.deepEqual(ev.params, { prompt: 'describe' });
  assert.deepEqual(ev.omitted, ['blob']);
});
