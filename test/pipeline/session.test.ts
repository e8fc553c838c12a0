/**
 * The generation loop end to end at the session level, over real HTTP: embedded trickle server, a real
 * publisher of generated MPEG-TS segments, the StreamSession (relay + sampler + cycles), the real
 * OpenAIBackend talking to the fake OpenAI-compatible engine, and real subscribers on data and events.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OpenAIBackend } from '../../src/model/openai.js';
import { parseParamsUpdate } from '../../src/config/params.js';
import { makeTestSegments } from '../helpers/media.js';
import { startFakeEngine, type FakeEngine, TEST_AUDIO_PAD_SAMPLES } from '../helpers/model.js';
import { startPipelineHarness, type PipelineHarness } from '../helpers/pipeline.js';
import { waitFor, sleep } from '../helpers/wait.js';

const STREAM = { durationS: 8, fps: 15, width: 320, height: 240, gopS: 1, audio: 'aac' as const };

async function setup(t: { after: (fn: () => Promise<void>) => void }, engineOpts: Parameters<typeof startFakeEngine>[0] = {}) {
  const engine = await startFakeEngine(engineOpts);
  const backend = new OpenAIBackend({ baseURL: engine.baseURL, capabilities: { maxImages: 8 }, audioPadSamples: TEST_AUDIO_PAD_SAMPLES });
  t.after(async () => {
    await backend.close();
    await engine.close();
  });
  return { engine, backend };
}

function userText(engine: FakeEngine, i: number): string {
  return engine.summarize(engine.chatBodies()[i]!).texts.join(' ');
}

type Rec = Record<string, unknown> & { stats: Record<string, number>; window: { start_ms: number; end_ms: number } };

test('records arrive once per generate_every_s of stream time with correct stats and window; a prompt update is in the next record', async (t) => {
  const segs = await makeTestSegments(STREAM);
  const { engine, backend } = await setup(t);
  const h = await startPipelineHarness({
    backend,
    params: { generate_every_s: 2, target_fps: 2, max_frames: 6, audio_window_s: 2, prompt: 'first prompt' },
  });
  t.after(() => h.close());

  await h.feedUnhurried(segs.slice(0, 4), 100);
  await waitFor('a first record', () => h.generations().length >= 1, 20_000);
  const next = parseParamsUpdate(h.session.params(), { prompt: 'second prompt' });
  const cyclesBefore = h.session.status().counters.cycles_started!;
  h.session.updateParams(next.params, next.changed, { prompt: 'second prompt' });
  await h.feedUnhurried(segs.slice(4), 100);
  await h.endInput();
  const end = await h.session.done;
  assert.equal(end.reason, 'input_ended');

  const gens = h.generations() as Rec[];
  const c = h.session.status().counters;
  assert.ok(
    gens.length >= 3 && gens.length <= 4,
    `expected 3–4 cycles for 8 s at one per 2 s, got ${gens.length}: windows ${gens.map((g) => `${g.window.start_ms}–${g.window.end_ms}`).join(', ')}; counters ${JSON.stringify({ started: c.cycles_started, skipped: c.cycles_skipped, empty: c.cycles_empty, failed: c.cycles_failed, discontinuities: c.media_discontinuities, audio_ms_in: c.audio_ms_in, frames_in: c.frames_in })}`,
  );
  assert.deepEqual(gens.map((g) => g.cycle_seq), gens.map((_, i) => i + 1));
  for (const g of gens) assert.match(String(g.cycle_id), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(new Set(gens.map((g) => g.cycle_id)).size, gens.length, 'each cycle has its own UUID');
  for (const [i, g] of gens.entries()) {
    assert.equal(g.stream_id, 'req-test-1');
    assert.ok(typeof g.timestamp_ms === 'number');
    // the record carries the prompt the request used
    assert.equal(g.prompt, userText(engine, i));
    const frames = g.stats.frame_count ?? -1;
    assert.ok(frames >= 0 && frames <= 6);
    assert.equal(engine.summarize(engine.chatBodies()[i]!).images.length, g.stats.frame_count);
    const audioMs = g.stats.audio_duration_ms ?? 0;
    assert.ok(audioMs > 0 && audioMs <= 2000);
    assert.equal(g.stats.max_new_tokens, 700);
    assert.equal(g.stats.input_tokens, (g.usage as { prompt_tokens: number }).prompt_tokens, 'engine-reported usage wins');
    assert.equal(g.stats.skipped_cycles, 0);
    assert.equal(g.stats.frames_dropped_by_gating, 0);
    const tm = g.stats.timings_ms as unknown as { encode: number; model: number; total: number };
    assert.ok(tm.total >= tm.model && tm.model >= 0 && tm.encode >= 0);
    assert.ok(g.window.end_ms - g.window.start_ms >= audioMs - 1);
    assert.ok(g.window.end_ms - g.window.start_ms <= 2000 + 6 * 500 + 100);
    if (i > 0) {
      const step = g.window.end_ms - gens[i - 1]!.window.end_ms;
      assert.ok(step >= 1500 && step <= 2600, `window ends ${step} ms apart for a 2 s cadence`);
    }
  }
  const firstNew = gens.findIndex((g) => g.prompt === 'second prompt');
  assert.equal(firstNew, cyclesBefore, 'the first cycle after the update uses the new prompt');
  assert.ok(gens.slice(0, firstNew).every((g) => g.prompt === 'first prompt'));
  assert.ok(gens.slice(firstNew).every((g) => g.prompt === 'second prompt'));
  assert.equal(h.eventTypes().filter((e) => e === 'params_updated').length, 1, 'one params_updated per update');
});

test('a cycle that comes due while one is running is skipped and counted on the next record', async (t) => {
  const segs = await makeTestSegments(STREAM);
  // each answer takes ≥ 0.8 s against a 0.25 s cadence, so due points keep finding a cycle running
  const { engine, backend } = await setup(t, { chunkDelayMs: 200, reply: () => 'one two three four' });
  const h = await startPipelineHarness({ backend, params: { generate_every_s: 0.25, target_fps: 2, max_frames: 4 } });
  t.after(() => h.close());
  await h.feed(segs, 400);
  await h.endInput();
  await h.session.done;
  const st = h.session.status().counters;
  await waitFor('every record', () => h.data.records.length >= st.records_published!, 5000);
  const gens = h.generations() as Rec[];
  assert.ok(gens.length >= 1);
  assert.equal(engine.chatBodies().length, gens.length, 'no request beyond the one cycle in flight');
  assert.equal(st.cycles_started, gens.length);
  const reported = gens.reduce((n, g) => n + (g.stats.skipped_cycles ?? 0), 0);
  assert.ok(reported > 0, 'skips are reported on records');
  assert.ok(reported <= st.cycles_skipped!, 'each skip is reported at most once');
  assert.ok(st.cycles_skipped! + gens.length >= 20, 'every due point of 8 s at 0.25 s is either run or counted as skipped');
});

test('stop during a cycle aborts the model request, flushes the records, closes channels and ends the session', async (t) => {
  const segs = await makeTestSegments(STREAM);
  const { engine, backend } = await setup(t);
  const h = await startPipelineHarness({ backend, params: { generate_every_s: 1, target_fps: 1 } });
  t.after(() => h.close());
  await h.feed(segs.slice(0, 2), 100);
  await waitFor('a first record', () => h.generations().length >= 1, 20_000);
  engine.setFault({ kind: 'hang' });
  const n = engine.chatBodies().length;
  await h.feed(segs.slice(2, 4), 100);
  await waitFor('a hanging request', () => engine.chatBodies().length > n, 20_000);
  const t0 = Date.now();
  await h.session.stop('stopped');
  const end = await h.session.done;
  assert.ok(Date.now() - t0 < 5000, 'stop does not wait on the hung engine');
  assert.equal(end.reason, 'stopped');
  const st = h.session.status();
  assert.equal(st.running, false);
  assert.equal(st.counters.cycles_in_flight, 0);
  assert.equal(st.counters.cycles_aborted, 1);
  await waitFor('the aborted record', () => h.data.records.some((r) => r.type === 'error'), 5000);
  const err = h.data.records.find((r) => r.type === 'error') as { cycle_seq: number; error: { code: string } };
  assert.equal(err.error.code, 'cycle_aborted');
  assert.equal(err.cycle_seq, 2);
  await waitFor('stream_stopped event', () => h.eventTypes().includes('stream_stopped'), 5000);
  const types = h.eventTypes();
  assert.ok(types.indexOf('stream_stopped') < types.lastIndexOf('status'), 'a final status follows the stop');
  const last = h.events.records.at(-1) as { event: { state: string } };
  assert.equal(last.event.state, 'OFFLINE');
  assert.equal(st.counters.records_waiting, 0);
});

test('control channel: the cached message applies at start, keepalives are ignored, bad messages become error events, cadence changes at once', async (t) => {
  const segs = await makeTestSegments(STREAM);
  const { backend } = await setup(t);
  const h = await startPipelineHarness({
    backend,
    params: { generate_every_s: 60, target_fps: 1 },
    cachedControl: JSON.stringify({ prompt: 'from control', extra_key: [1, 2] }),
  });
  t.after(() => h.close());
  await waitFor('the cached update', () => h.session.params().prompt === 'from control', 5000);
  assert.deepEqual(h.session.extraParams().extra_key, [1, 2]);
  await h.control.publish('{"keep":"alive"}');
  await h.control.publish('{"generate_every_s": -1}');
  await h.control.publish('not json');
  await waitFor('two error events', () => h.events.records.filter((r) => (r.event as { type: string }).type === 'error').length >= 2, 5000);
  assert.equal(h.session.params().generate_every_s, 60, 'an invalid update changes nothing');
  await h.feed(segs.slice(0, 3), 50);
  await sleep(500);
  assert.equal(h.generations().length, 0, 'no cycle yet at a 60 s cadence');
  await h.control.publish('{"generate_every_s": 1}');
  await waitFor('a record right after the cadence change', () => h.generations().length >= 1, 10_000);
  assert.equal(h.generations()[0]!.prompt, 'from control');
  const updates = h.events.records.filter((r) => (r.event as { type: string }).type === 'params_updated');
  assert.equal(updates.length, 2, 'one params_updated per valid update; none for keepalives');
  const errs = h.events.records.filter((r) => (r.event as { type: string }).type === 'error') as Array<{ event: { error: { code: string } } }>;
  assert.deepEqual(errs.map((e) => e.event.error.code).slice(0, 2), ['invalid_params', 'invalid_control_message']);
});

test('events: heartbeat at start and on cadence, first ingest/processed segment, status with counters', async (t) => {
  const segs = await makeTestSegments(STREAM);
  const { backend } = await setup(t);
  const h = await startPipelineHarness({ backend, params: { generate_every_s: 1 }, deps: { heartbeatMs: 150 } });
  t.after(() => h.close());
  await waitFor('the first heartbeat', () => h.eventTypes().includes('heartbeat'), 5000);
  assert.equal(h.eventTypes()[0], 'heartbeat');
  await h.feed(segs.slice(0, 3), 100);
  const heartbeats = () => h.events.records.filter((r) => (r.event as { type: string }).type === 'heartbeat') as Array<{ event: { dimensions: { width: number } } }>;
  await waitFor('first-segment events, 4 heartbeats, one after frames arrived', () => {
    const ty = h.eventTypes();
    return ty.includes('receive_first_ingest_segment') && ty.includes('send_first_processed_segment') && heartbeats().length >= 4 && heartbeats().some((x) => x.event.dimensions.width > 0);
  }, 10_000);
  const hb = h.events.records.find((r) => (r.event as { type: string }).type === 'heartbeat') as { event: Record<string, unknown>; queue_event_type: string };
  assert.equal(hb.queue_event_type, 'stream_heartbeat');
  assert.deepEqual(hb.event.urls, { subscribe: h.urls.subscribeUrl, publish: h.urls.publishUrl, control: h.urls.controlUrl, events: h.urls.eventsUrl, data: h.urls.dataUrl });
  const first = h.events.records.find((r) => (r.event as { type: string }).type === 'receive_first_ingest_segment') as { queue_event_type: string };
  assert.equal(first.queue_event_type, 'ai_stream_events');
  const status = h.events.records.filter((r) => r.queue_event_type === 'ai_stream_status').at(-1) as { event: Record<string, unknown> };
  assert.equal(status.event.type, 'status');
  assert.equal(status.event.stream_id, 'req-test-1');
  assert.ok(['ONLINE', 'INITIALIZING', 'DEGRADED_INPUT'].includes(status.event.state as string));
  assert.ok(((status.event.counters as Record<string, number>).segments_in ?? 0) >= 1);
  const times = h.events.records.filter((r) => (r.event as { type: string }).type === 'heartbeat').map((r) => (r.event as { timestamp: number }).timestamp);
  for (let i = 1; i < times.length; i++) assert.ok(times[i]! - times[i - 1]! >= 100, 'heartbeats are spaced by the interval');
  assert.equal(heartbeats()[0]!.event.dimensions.width, 0, 'no dimensions before any frame');
  // letterbox (default) delivers Gemma 3n's 768×768 square whatever the 320×240 source.
  assert.equal(heartbeats().find((x) => x.event.dimensions.width > 0)!.event.dimensions.width, 768, 'then the sampled frames\' size');
});

test('a request that cannot fit max_input_tokens answers with an error record instead of vanishing', async (t) => {
  const segs = await makeTestSegments(STREAM);
  const { engine, backend } = await setup(t);
  const h = await startPipelineHarness({ backend, params: { generate_every_s: 1, max_input_tokens: 256, prompt: 'describe '.repeat(100) } });
  t.after(() => h.close());
  await h.feed(segs.slice(0, 4), 50);
  await waitFor('an error record', () => h.data.records.some((r) => r.type === 'error'), 10_000);
  const e = h.data.records.find((r) => r.type === 'error') as { error: { code: string; message: string }; prompt: string; stats: { input_tokens: number } };
  assert.equal(e.error.code, 'input_over_budget');
  assert.match(e.error.message, /max_input_tokens is 256/);
  assert.ok(e.stats.input_tokens > 256);
  assert.equal(engine.chatBodies().length, 0, 'nothing over budget is sent');
});

test('context across cycles and the correction pass: history is fed back and corrections link to their cycle', async (t) => {
  const segs = await makeTestSegments(STREAM);
  let n = 0;
  const { engine, backend } = await setup(t, { reply: (s) => (s.images.length + s.audio.length === 0 ? `corrected ${n}` : `output ${++n}`) });
  const h: PipelineHarness = await startPipelineHarness({ backend, params: { generate_every_s: 2, context_history: 2, correction_enabled: true } });
  t.after(() => h.close());
  await h.feed(segs, 50);
  await waitFor('three corrections', () => h.data.records.filter((r) => r.type === 'correction').length >= 3, 20_000);
  const recs = h.data.records;
  for (const c of recs.filter((r) => r.type === 'correction')) {
    const i = recs.indexOf(c);
    const g = recs[i - 1]!;
    assert.equal(g.type, 'generation');
    assert.equal(c.cycle_id, g.cycle_id, 'a correction follows its generation and names its cycle');
    assert.equal(c.corrected_text, `corrected ${(g.text as string).split(' ')[1]}`);
  }
  // the third generation request carries the last two (corrected) outputs as earlier turns
  const gensBodies = engine.chatBodies().filter((b) => engine.summarize(b).images.length + engine.summarize(b).audio.length > 0);
  const msgs = gensBodies[2]!.messages as Array<{ role: string; content: unknown }>;
  const assistant = msgs.filter((m) => m.role === 'assistant').map((m) => m.content);
  assert.deepEqual(assistant, ['corrected 1', 'corrected 2']);
});
