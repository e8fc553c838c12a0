/**
 * Richer outputs end to end over real HTTP: the control API starts a stream on an embedded trickle
 * server, a real publisher feeds generated MPEG-TS, the OpenAI backend talks to the fake engine
 * streaming its answer slowly (one word every chunkDelayMs), and real subscribers read the data and
 * events channels. Pins partial text (before the final record, in order, rate-limited, valid lines),
 * structured output (vLLM's response_format shape on the wire, the parsed `json` on the record, the
 * documented error codes for invalid answers), alert rules (once per cooldown on both channels, live
 * updates) and the backend check (a backend that cannot constrain decoding answers 400 naming
 * output_schema, unless best effort is asked for).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OUTPUT_PRESETS } from '../../src/config/output-params.js';
import { rootLogger } from '../../src/log.js';
import { OpenAIBackend } from '../../src/model/openai.js';
import { TransformersBackend } from '../../src/model/transformers.js';
import { createSessionFactory } from '../../src/pipeline/session.js';
import { TricklePublisher } from '../../src/trickle/publisher.js';
import { TrickleServer } from '../../src/trickle/server.js';
import { makeTestSegments, publishSegments } from '../helpers/media.js';
import { startFakeEngine, type FakeEngine, type FakeEngineOptions, TEST_AUDIO_PAD_SAMPLES } from '../helpers/model.js';
import { collectChannel, type ChannelCollector } from '../helpers/pipeline.js';
import { LifecycleBackendDouble, request, startTestServer } from '../helpers/server.js';
import { sleep, waitFor } from '../helpers/wait.js';

type Rec = Record<string, unknown>;

let segments: Promise<Buffer[]> | undefined;
const media = () => (segments ??= makeTestSegments({ durationS: 6, fps: 10, width: 320, height: 240, gopS: 1, audio: 'aac' }));

/**
 * One stream through the control API: starts it with `params`, feeds the clip (one 1 s segment per
 * `paceMs`), runs `during` while it runs, ends the input and waits for the stream to end.
 */
async function runStream(opts: { params: Rec; engine?: FakeEngineOptions; paceMs?: number; during?: (live: { base: string; data: ChannelCollector; engine: FakeEngine }) => Promise<void> }) {
  const engine = await startFakeEngine(opts.engine);
  const backend = new OpenAIBackend({ baseURL: engine.baseURL, capabilities: { maxImages: 2 }, timeoutMs: 20_000, audioPadSamples: TEST_AUDIO_PAD_SAMPLES });
  const trickle = new TrickleServer({ port: 0, host: '127.0.0.1' });
  await trickle.listen();
  for (const [n, mime] of [['in', 'video/MP2T'], ['in-data', 'application/jsonl'], ['in-events', 'application/json']] as const) trickle.createChannel(n, mime);
  const srv = await startTestServer({ backend, sessionFactory: createSessionFactory({ backend, logger: rootLogger() }) });
  const data = collectChannel(trickle.channelUrl('in-data'));
  const events = collectChannel(trickle.channelUrl('in-events'), { mode: 'json' });
  const input = new TricklePublisher({ url: trickle.channelUrl('in'), mimeType: 'video/MP2T' });
  try {
    await waitFor('engine warm-up', async () => (await request(srv.url, 'GET', '/health')).body.status === 'IDLE', 10_000);
    const start = await request(srv.url, 'POST', '/stream/start', {
      gateway_request_id: 'outputs-1',
      subscribe_url: trickle.channelUrl('in'),
      data_url: trickle.channelUrl('in-data'),
      events_url: trickle.channelUrl('in-events'),
      params: { generate_every_s: 1, target_fps: 1, max_frames: 2, audio_window_s: 1, ...opts.params },
    });
    assert.equal(start.status, 200, start.text);
    const segs = await media();
    const feeding = (async () => {
      for (const seg of segs) {
        await publishSegments(input, [seg]);
        await sleep(opts.paceMs ?? 400);
      }
    })();
    await opts.during?.({ base: srv.url, data, engine });
    await feeding;
    // Let the last cycle's answer finish, then end the input the way an orchestrator does.
    await waitFor('the engine idle', () => engine.openChatRequests() === 0, 20_000);
    trickle.deleteChannel('in');
    await waitFor('the stream to end', async () => (await request(srv.url, 'GET', '/health')).body.status === 'IDLE', 40_000);
    await waitFor('the final status event', () => events.records.some((r) => (r.event as Rec).type === 'status' && (r.event as Rec).state === 'OFFLINE'), 10_000);
    return { engine, data, events: events.records.map((r) => r.event as Rec) };
  } finally {
    await input.close().catch(() => undefined);
    await srv.close();
    await data.stop();
    await events.stop();
    await trickle.close();
    await backend.close();
    await engine.close();
  }
}

const WORDS = 'a person walks past the window while a kettle starts to whistle in the kitchen';

describe('partial text', () => {
  it('publishes rate-limited partial records of the text so far, in order, before each final record', { timeout: 120_000 }, async () => {
    const interval = 300;
    const { data } = await runStream({
      params: { partial_text: true, partial_interval_ms: interval, generate_every_s: 2 },
      // 14 words, one every 100 ms: each answer streams for ≈ 1.4 s
      engine: { chunkDelayMs: 100, reply: () => WORDS },
      paceMs: 700,
    });
    // every line is one valid JSON object (the collector parsed each one)
    assert.equal(data.lines.length, data.records.length);
    const gens = data.records.filter((r) => r.type === 'generation');
    assert.ok(gens.length >= 1, 'at least one cycle ran');
    for (const g of gens) {
      const idx = data.records.indexOf(g);
      const parts = data.records.filter((r) => r.type === 'partial' && r.cycle_id === g.cycle_id);
      assert.ok(parts.length >= 3, `a 1.4 s answer gives several partials at ${interval} ms (got ${parts.length})`);
      assert.ok(parts.length <= Math.ceil(1600 / interval) + 1, `rate-limited (got ${parts.length})`);
      assert.deepEqual(parts.map((p) => p.partial_seq), parts.map((_, i) => i + 1), 'partial_seq 1, 2, 3…');
      for (const p of parts) {
        assert.ok(data.records.indexOf(p) < idx, 'every partial comes before its final record');
        assert.equal(p.cycle_seq, g.cycle_seq);
        assert.equal(p.stream_id, 'outputs-1');
        assert.ok(String(g.text).startsWith(String(p.text)), 'a partial is a prefix of the final text');
      }
      for (let i = 1; i < parts.length; i++) {
        assert.ok(String(parts[i]!.text).length > String(parts[i - 1]!.text).length, 'the text grows');
        const gap = Number(parts[i]!.timestamp_ms) - Number(parts[i - 1]!.timestamp_ms);
        assert.ok(gap >= interval - 1, `partials at least ${interval} ms apart (got ${gap})`);
      }
      assert.equal(parts[0]!.text, 'a ', 'the first partial goes out with the first token');
      assert.ok(Number(g.timestamp_ms) - Number(parts[0]!.timestamp_ms) >= 1000, 'partials are published while the answer streams, not at its end');
      assert.equal(g.text, WORDS, 'the final record is unchanged');
      assert.equal('partial_seq' in g, false);
    }
  });
});

describe('structured output and alert rules', () => {
  const answer = { summary: 'a person waves near a small fire', people: 2, objects: ['cup', 'lamp'], speech: '' };

  it('sends vLLM\'s response_format, puts the parsed json on the record, and fires alerts once per cooldown on both channels', { timeout: 120_000 }, async () => {
    const { engine, data, events } = await runStream({
      params: {
        output_schema: 'scene',
        alert_rules: [
          { name: 'fire', contains: 'FIRE', cooldown_s: 3600 },
          { name: 'crowd', json_path: 'people', op: 'gte', value: 2, cooldown_s: 0 },
        ],
      },
      engine: { chunkDelayMs: 5, reply: (_s, body) => (body.response_format ? JSON.stringify(answer) : 'prose') },
      paceMs: 500,
      during: async ({ base, data: live }) => {
        await waitFor('an alert', () => live.records.some((r) => r.type === 'alert'), 30_000);
        const text = await (await fetch(`${base}/metrics`)).text();
        assert.match(text, /^gemma3n_trickle_alerts_total\{stream_id="outputs-1",rule="fire"\} 1$/m, 'alerts are counted in /metrics by rule');
      },
    });
    const bodies = engine.chatBodies().filter((b) => b.max_tokens !== 1); // not the warm-up probe
    assert.ok(bodies.length >= 3, `several cycles ran (${bodies.length})`);
    for (const b of bodies) {
      assert.deepEqual(b.response_format, { type: 'json_schema', json_schema: { name: 'scene', schema: OUTPUT_PRESETS.scene, strict: true } });
    }
    const gens = data.records.filter((r) => r.type === 'generation');
    assert.equal(gens.length, bodies.length);
    for (const g of gens) {
      assert.deepEqual(g.json, answer);
      assert.equal(g.text, JSON.stringify(answer));
    }
    const alerts = data.records.filter((r) => r.type === 'alert');
    const fire = alerts.filter((a) => a.rule === 'fire');
    assert.equal(fire.length, 1, 'a rule fires once per cooldown');
    assert.equal(fire[0]!.cycle_id, gens[0]!.cycle_id, 'on the first cycle that matched');
    assert.equal(fire[0]!.match, 'fire', 'the matching text, as it is in the answer');
    assert.equal(fire[0]!.kind, 'contains');
    const crowd = alerts.filter((a) => a.rule === 'crowd');
    assert.equal(crowd.length, gens.length, 'cooldown 0: every matching cycle');
    assert.deepEqual(crowd.map((a) => a.cycle_id), gens.map((g) => g.cycle_id));
    assert.equal(crowd[0]!.match, '2');
    assert.equal(crowd[0]!.json_path, 'people');
    for (const a of alerts) assert.ok(data.records.indexOf(a) > data.records.findIndex((r) => r.cycle_id === a.cycle_id && r.type === 'generation'), 'an alert follows its cycle\'s record');
    const alertEvents = events.filter((e) => e.type === 'alert');
    assert.equal(alertEvents.filter((e) => e.rule === 'fire').length, 1);
    assert.equal(alertEvents.filter((e) => e.rule === 'crowd').length, crowd.length);
    assert.equal(alertEvents[0]!.stream_id, 'outputs-1');
    assert.equal(alertEvents.find((e) => e.rule === 'fire')!.cycle_id, fire[0]!.cycle_id);
  });

  it('an answer that is not JSON, or breaks the schema, is an error record with its code and the raw text', { timeout: 120_000 }, async () => {
    const replies = ['sorry, no JSON here', JSON.stringify({ ...answer, people: 'many' })];
    let n = 0;
    const { data, events } = await runStream({
      params: { output_schema: 'scene', alert_rules: [{ name: 'any', regex: '.', cooldown_s: 0 }] },
      engine: { reply: (_s, body) => (body.max_tokens === 1 ? 'ok' : replies[n++ % 2]!) },
      paceMs: 500,
    });
    const errors = data.records.filter((r) => r.type === 'error') as Array<Rec & { error: { code: string; message: string } }>;
    assert.ok(errors.length >= 2, `both kinds of bad answer seen (${errors.length})`);
    assert.equal(data.records.filter((r) => r.type === 'generation').length, 0, 'no generation record for an invalid answer');
    const notJson = errors.find((e) => e.error.code === 'output_not_json');
    const mismatch = errors.find((e) => e.error.code === 'output_schema_mismatch');
    assert.ok(notJson && mismatch, JSON.stringify(errors.map((e) => e.error)));
    assert.equal(notJson.text, replies[0]);
    assert.equal(mismatch.text, replies[1]);
    assert.match(mismatch.error.message, /\/people: must be integer/);
    assert.equal(data.records.filter((r) => r.type === 'alert').length, 0, 'alerts fire only on valid output');
    const codes = events.filter((e) => e.type === 'error').map((e) => (e.error as { code: string }).code);
    assert.ok(codes.includes('output_not_json') && codes.includes('output_schema_mismatch'), 'and error events');
  });

  it('output_schema, partials and alert rules change live through /stream/params', { timeout: 120_000 }, async () => {
    let updatedAt = 0;
    const { engine, data } = await runStream({
      params: {},
      engine: { chunkDelayMs: 5, reply: (_s, body) => (body.response_format ? JSON.stringify({ caption: 'a quiet room' }) : 'a quiet room') },
      paceMs: 500,
      during: async ({ base, data: live, engine: eng }) => {
        await waitFor('a plain record', () => live.records.some((r) => r.type === 'generation'), 30_000);
        const res = await request(base, 'POST', '/stream/params', {
          output_schema: 'caption',
          partial_text: true,
          alert_rules: [{ name: 'quiet', regex: '\\bquiet\\b', cooldown_s: 3600 }],
        });
        assert.equal(res.status, 200, res.text);
        updatedAt = eng.chatBodies().length;
      },
    });
    const bodies = engine.chatBodies();
    assert.equal(bodies.slice(0, updatedAt).filter((b) => b.response_format).length, 0);
    const after = bodies.slice(updatedAt);
    assert.ok(after.length >= 1 && after.every((b) => (b.response_format as { json_schema: { name: string } }).json_schema.name === 'caption'));
    const gens = data.records.filter((r) => r.type === 'generation');
    assert.equal(gens[0]!.json, undefined);
    assert.deepEqual(gens.at(-1)!.json, { caption: 'a quiet room' });
    assert.ok(data.records.some((r) => r.type === 'partial'), 'partials after the update');
    const alerts = data.records.filter((r) => r.type === 'alert');
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0]!.match, 'quiet');
    assert.equal(alerts[0]!.kind, 'regex');
  });
});

describe('a backend that cannot constrain decoding', () => {
  it('start answers 400 naming output_schema, unless best effort is asked for (the real in-process backend)', { timeout: 30_000 }, async () => {
    const backend = new TransformersBackend({ model: '/nonexistent/gemma3n-model', local: true });
    assert.equal(backend.capabilities.structuredOutput, undefined, 'the in-process backend declares no constrained decoding');
    const srv = await startTestServer({ backend, sessionFactory: createSessionFactory({ backend, logger: rootLogger() }) });
    try {
      const refused = await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 's1', params: { output_schema: 'scene' } });
      assert.equal(refused.status, 400);
      assert.match(String(refused.body.message), /output_schema: .*cannot constrain decoding.*output_schema_best_effort/);
      const bestEffort = await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 's1', params: { output_schema: 'scene', output_schema_best_effort: true } });
      assert.notEqual(bestEffort.status, 400, 'best effort passes the check (this backend then fails for its missing model)');
      assert.doesNotMatch(String(bestEffort.body.message), /output_schema/);
    } finally {
      await srv.close();
    }
  });

  it('a live update asking for output_schema is refused with 400 and changes nothing; with best effort it applies', async () => {
    const backend = new LifecycleBackendDouble('ready');
    const srv = await startTestServer({ backend, sessionFactory: createSessionFactory({ backend, logger: rootLogger() }) });
    try {
      assert.equal((await request(srv.url, 'POST', '/stream/start', { gateway_request_id: 's2' })).status, 200);
      const refused = await request(srv.url, 'POST', '/stream/params', { output_schema: { type: 'object' } });
      assert.equal(refused.status, 400);
      assert.match(String(refused.body.message), /output_schema: /);
      assert.equal(((await request(srv.url, 'GET', '/stream/status')).body.params as Rec).output_schema, null);
      const ok = await request(srv.url, 'POST', '/stream/params', { output_schema: 'caption', output_schema_best_effort: true });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(((await request(srv.url, 'GET', '/stream/status')).body.params as Rec).output_schema, 'caption');
      const bad = await request(srv.url, 'POST', '/stream/params', { alert_rules: [{ name: 'r', regex: '(a+)\\1' }] });
      assert.equal(bad.status, 400);
      assert.match(String(bad.body.message), /alert_rules\.0\.regex: is not a supported regular expression/);
    } finally {
      await srv.close();
    }
  });
});
