/**
 * OpenAIBackend against a fake OpenAI-compatible engine (a test double on 127.0.0.1). These pin the
 * wire format and error mapping of our client; they say nothing about a real model's quality or speed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { GenerateEvent, GenerateRequest, ImageInput } from '../../src/model/backend.js';
import { ModelError } from '../../src/model/errors.js';
import { OpenAIBackend, type OpenAIBackendOptions } from '../../src/model/openai.js';
import { httpStatusOf } from '../../src/server/http-status.js';
import { pino } from 'pino';
import { closedPort, fakeEngineReply, startFakeEngine, testJpeg, tone, type FakeEngine } from '../helpers/model.js';

function frames(n: number): ImageInput[] {
  return Array.from({ length: n }, (_, i) => ({ ptsMs: i * 100, width: 64, height: 48, jpeg: testJpeg() }));
}

async function collect(it: AsyncIterable<GenerateEvent>): Promise<GenerateEvent[]> {
  const out: GenerateEvent[] = [];
  for await (const ev of it) out.push(ev);
  return out;
}

async function failure(p: Promise<unknown>): Promise<ModelError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ModelError, `expected ModelError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}

function wavInfo(wav: Buffer) {
  return {
    riff: wav.toString('ascii', 0, 4),
    wave: wav.toString('ascii', 8, 12),
    format: wav.readUInt16LE(20),
    channels: wav.readUInt16LE(22),
    rate: wav.readUInt32LE(24),
    bits: wav.readUInt16LE(34),
    samples: wav.readUInt32LE(40) / 2,
  };
}

const req = (over: Partial<GenerateRequest> = {}): GenerateRequest => ({ prompt: 'What is happening?', images: [], maxNewTokens: 64, ...over });

describe('OpenAIBackend against a fake engine', () => {
  let engine: FakeEngine;
  const backends: OpenAIBackend[] = [];
  const make = (o: Partial<OpenAIBackendOptions> = {}) => {
    const b = new OpenAIBackend({ baseURL: engine.baseURL, timeoutMs: 5000, ...o });
    backends.push(b);
    return b;
  };

  before(async () => {
    engine = await startFakeEngine({ maxImages: 8 });
  });
  after(async () => {
    for (const b of backends) await b.close();
    await engine.close();
  });

  it('sends N JPEG frames as image_url data URLs and one 16 kHz PCM16 WAV input_audio part padded to 30 s, and reassembles the streamed reply', async () => {
    const b = make();
    const before = engine.chatBodies().length;
    const events = await collect(
      b.generate(req({ images: frames(3), audio: { startPtsMs: 0, sampleRate: 16000, samples: tone(200) }, system: 'Be terse.', sampling: { temperature: 0.7, topP: 0.9 } })),
    );
    const body = engine.chatBodies()[before]!;
    assert.equal(body.model, 'google/gemma-3n-E4B-it');
    assert.equal(body.stream, true);
    assert.deepEqual(body.stream_options, { include_usage: true });
    assert.equal(body.max_tokens, 64);
    assert.equal(body.temperature, 0.7);
    assert.equal(body.top_p, 0.9);
    const messages = body.messages as Array<{ role: string; content: unknown }>;
    assert.deepEqual(messages.map((m) => m.role), ['system', 'user']);
    const s = engine.summarize(body);
    assert.equal(s.images.length, 3);
    for (const img of s.images) assert.deepEqual([...img.subarray(0, 2)], [0xff, 0xd8], 'JPEG SOI marker');
    assert.deepEqual(s.texts, ['What is happening?']);
    assert.equal(s.audio.length, 1);
    assert.equal(s.audio[0]!.kind, 'input_audio');
    assert.equal(s.audio[0]!.format, 'wav');
    assert.deepEqual(wavInfo(s.audio[0]!.wav), { riff: 'RIFF', wave: 'WAVE', format: 1, channels: 1, rate: 16000, bits: 16, samples: 480000 });

    const deltas = events.filter((e) => e.type === 'delta');
    assert.ok(deltas.length > 1, 'several deltas streamed');
    const done = events.at(-1)!;
    assert.equal(done.type, 'done');
    assert.equal(events.filter((e) => e.type === 'done').length, 1);
    if (done.type !== 'done') return;
    assert.equal(done.text, fakeEngineReply('both'));
    assert.equal(deltas.map((d) => (d.type === 'delta' ? d.text : '')).join(''), done.text);
    assert.equal(done.usage.promptTokens! > 3 * 256 + 188, true);
    assert.equal(done.usage.completionTokens, deltas.length);
    assert.equal(done.finishReason, 'stop');
    assert.ok(done.timings.modelMs >= 0 && done.timings.encodeMs >= 0 && done.timings.firstTokenMs! >= 0);
  });

  it('non-streaming mode returns the whole reply as one delta and the engine usage', async () => {
    const b = make({ stream: false });
    const events = await collect(b.generate(req({ images: frames(1) })));
    const body = engine.chatBodies().at(-1)!;
    assert.equal(body.stream, false);
    assert.deepEqual(events.map((e) => e.type), ['delta', 'done']);
    const done = events[1]!;
    assert.ok(done.type === 'done' && done.text === fakeEngineReply('image') && done.usage.completionTokens === 4);
  });

  it('sends audio as an audio_url WAV data URL when the engine declares audio_url (SGLang, mistral.rs)', async () => {
    const b = make({ capabilities: { audioPart: 'audio_url' }, audioPadSamples: 16000 });
    await collect(b.generate(req({ audio: { startPtsMs: 0, sampleRate: 16000, samples: tone(1500) } })));
    const s = engine.summarize(engine.chatBodies().at(-1)!);
    assert.equal(s.audio[0]!.kind, 'audio_url');
    assert.equal(wavInfo(s.audio[0]!.wav).samples, 24000, 'clips over the configured pad length are not padded');
  });

  it('never sends what the engine declared it cannot take: audio dropped when audioPart is null, frames thinned to maxImages', async () => {
    const b = make({ capabilities: { audioPart: null, maxImages: 2 } });
    assert.equal(b.capabilities.audio, null);
    const events = await collect(b.generate(req({ images: frames(5), audio: { startPtsMs: 0, sampleRate: 16000, samples: tone(500) } })));
    const s = engine.summarize(engine.chatBodies().at(-1)!);
    assert.equal(s.images.length, 2);
    assert.equal(s.audio.length, 0);
    const done = events.at(-1)!;
    assert.ok(done.type === 'done' && done.text === fakeEngineReply('image'));
  });

  it('maps a 400 (too many images per prompt) to engine_bad_request with the engine message', async () => {
    const b = make({ capabilities: { maxImages: 20 } });
    const err = await failure(collect(b.generate(req({ images: frames(9) }))));
    assert.equal(err.code, 'engine_bad_request');
    assert.equal(err.engineStatus, 400);
    assert.match(err.message, /At most 8 image/);
  });

  it('maps an unknown model to model_not_found naming the model', async () => {
    const b = make({ modelId: 'google/gemma-3n-E9B-it' });
    const err = await failure(collect(b.generate(req())));
    assert.equal(err.code, 'model_not_found');
    assert.match(err.message, /gemma-3n-E9B-it/);
  });

  it('maps a refused connection to engine_unreachable naming the URL', async () => {
    const port = await closedPort();
    const b = new OpenAIBackend({ baseURL: `http://127.0.0.1:${port}/v1` });
    backends.push(b);
    const err = await failure(collect(b.generate(req())));
    assert.equal(err.code, 'engine_unreachable');
    assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
    assert.equal(b.status().state, 'error');
  });

  it('maps engine 500s, malformed chunks and mid-stream disconnects to engine_error', async () => {
    const b = make();
    try {
      engine.setFault({ kind: 'status', status: 500, message: 'EngineCore died' });
      let err = await failure(collect(b.generate(req())));
      assert.equal(err.code, 'engine_error');
      assert.match(err.message, /EngineCore died/);
      engine.setFault({ kind: 'malformed_chunk' });
      err = await failure(collect(b.generate(req())));
      assert.equal(err.code, 'engine_error');
      engine.setFault({ kind: 'drop_mid_stream' });
      err = await failure(collect(b.generate(req())));
      assert.equal(err.code, 'engine_error');
    } finally {
      engine.setFault(null);
    }
  });

  it('maps an engine that stops answering to engine_timeout after the request timeout', async () => {
    const b = make({ timeoutMs: 300 });
    try {
      engine.setFault({ kind: 'hang' });
      assert.equal((await failure(collect(b.generate(req())))).code, 'engine_timeout');
      engine.setFault({ kind: 'stall', ms: 2000 });
      assert.equal((await failure(collect(b.generate(req())))).code, 'engine_timeout', 'a stream stalling after its headers also times out');
    } finally {
      engine.setFault(null);
    }
  });

  it('aborting mid-stream rejects at once with an AbortError', async () => {
    const b = make();
    engine.setFault({ kind: 'stall', ms: 5000 });
    try {
      const ac = new AbortController();
      const it = b.generate(req({ signal: ac.signal }))[Symbol.asyncIterator]();
      const first = await it.next();
      assert.equal(first.done, false);
      const pending = it.next();
      const t0 = Date.now();
      ac.abort();
      await assert.rejects(pending, (err: Error) => err.name === 'AbortError' && (err as ModelError).code === 'aborted');
      assert.ok(Date.now() - t0 < 1000);
    } finally {
      engine.setFault(null);
    }
  });
});

describe('OpenAIBackend auth and warm-up', () => {
  it('maps a 401 to engine_unauthorized and sends the API key as a bearer token', async () => {
    const engine = await startFakeEngine({ apiKey: 'secret' });
    const bad = new OpenAIBackend({ baseURL: engine.baseURL, apiKey: 'wrong' });
    const good = new OpenAIBackend({ baseURL: engine.baseURL, apiKey: 'secret' });
    try {
      const err = await failure(collect(bad.generate(req())));
      assert.equal(err.code, 'engine_unauthorized');
      assert.match(err.message, /OPENAI_API_KEY/);
      await good.load();
      assert.equal(good.status().state, 'ready');
      assert.equal(engine.requests.at(-1)!.headers.authorization, 'Bearer secret');
      await assert.rejects(bad.load(), (e: ModelError) => e.code === 'engine_unauthorized');
      assert.equal(bad.status().state, 'error');
    } finally {
      await bad.close();
      await good.close();
      await engine.close();
    }
  });

  it('reads loading until the engine answers, error after the deadline, and ready again once it comes up', async () => {
    const port = await closedPort();
    const b = new OpenAIBackend({ baseURL: `http://127.0.0.1:${port}/v1`, warmup: { retryIntervalMs: 50, deadlineMs: 300 } });
    let engine: FakeEngine | undefined;
    try {
      const loading = b.load();
      assert.equal(b.status().state, 'loading');
      const err = await failure(loading);
      assert.equal(err.code, 'engine_unreachable');
      assert.equal(b.status().state, 'error');
      assert.match(b.status().message ?? '', /cannot reach/);
      engine = await startFakeEngine({ port });
      const deadline = Date.now() + 5000;
      while (b.status().state !== 'ready' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.equal(b.status().state, 'ready');
      const warmup = engine.chatBodies()[0]!;
      assert.equal(warmup.max_tokens, 1);
    } finally {
      await b.close();
      await engine?.close();
    }
  });
});

/** A pino logger that keeps every line in memory (level debug), for asserting what an operator sees. */
function memoryLogger() {
  const lines: Array<{ level: number; msg: string; code?: string; err?: string }> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[number]) });
  return { logger, lines, warns: () => lines.filter((l) => l.level === 40) };
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('OpenAIBackend and a vLLM build without #50958 (fake engine with the mixed-audio-length bug, vllm#50957)', () => {
  it('pads every clip to one server-wide length, so two concurrent requests with different audio windows keep the engine alive', async () => {
    const engine = await startFakeEngine({ audioBatchBug: { windowMs: 150 } });
    const b = new OpenAIBackend({ baseURL: engine.baseURL, timeoutMs: 5000 });
    try {
      const clip = (ms: number) => ({ startPtsMs: 0, sampleRate: 16000 as const, samples: tone(ms) });
      const [x, y] = await Promise.all([collect(b.generate(req({ audio: clip(1500) }))), collect(b.generate(req({ audio: clip(4000) })))]);
      assert.equal(x.at(-1)!.type, 'done');
      assert.equal(y.at(-1)!.type, 'done');
      assert.deepEqual(engine.audioBatches(), [[480000, 480000]], 'both clips went into one batch, at the same length');
      assert.equal(engine.dead(), false);
    } finally {
      await b.close();
      await engine.close();
    }
  });

  it('(control) the fake engine dies, like the real one, when one batch mixes clip lengths', async () => {
    const engine = await startFakeEngine({ audioBatchBug: { windowMs: 150 } });
    const b = new OpenAIBackend({ baseURL: engine.baseURL, timeoutMs: 5000, audioPadSamples: 16000 });
    try {
      const clip = (ms: number) => ({ startPtsMs: 0, sampleRate: 16000 as const, samples: tone(ms) });
      const results = await Promise.allSettled([collect(b.generate(req({ audio: clip(1500) }))), collect(b.generate(req({ audio: clip(4000) })))]);
      assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
      assert.equal(engine.dead(), true);
      assert.equal((await failure(collect(b.generate(req())))).code, 'engine_error', 'a dead engine refuses everything after');
    } finally {
      await b.close();
      await engine.close();
    }
  });
});

describe('OpenAIBackend and the engine context length (fake engine reporting max_model_len)', () => {
  it('reads max_model_len at warm-up and refuses an over-long request with context_length_exceeded before sending it', async () => {
    const engine = await startFakeEngine({ maxModelLen: 2048 });
    const b = new OpenAIBackend({ baseURL: engine.baseURL, timeoutMs: 5000 });
    try {
      await b.load();
      assert.equal(b.capabilities.maxContextTokens, 2048);
      const sent = engine.chatBodies().length;
      const err = await failure(collect(b.generate(req({ images: frames(7), maxNewTokens: 256 }))));
      assert.equal(err.code, 'context_length_exceeded');
      assert.equal(httpStatusOf(err), 400, 'a caller\'s 400 where it reaches the control API');
      assert.match(err.message, /max_model_len 2048/);
      assert.match(err.message, /max_new_tokens 256/);
      assert.match(err.message, /lower max_new_tokens or max_input_tokens/);
      assert.equal(engine.chatBodies().length, sent, 'nothing was sent');
      const ok = await collect(b.generate(req({ images: frames(2), maxNewTokens: 256 })));
      assert.equal(ok.at(-1)!.type, 'done');
    } finally {
      await b.close();
      await engine.close();
    }
  });

  it("maps vLLM's own context-length 400 to context_length_exceeded when the limit was not known", async () => {
    const engine = await startFakeEngine({ maxModelLen: 2048 });
    const b = new OpenAIBackend({ baseURL: engine.baseURL, timeoutMs: 5000 }); // no load(): limit unknown
    try {
      const err = await failure(collect(b.generate(req({ images: frames(7), maxNewTokens: 256 }))));
      assert.equal(err.code, 'context_length_exceeded');
      assert.equal(err.engineStatus, 400);
      assert.match(err.message, /maximum context length is 2048/);
    } finally {
      await b.close();
      await engine.close();
    }
  });
});

describe('OpenAIBackend failure paths an operator must see', () => {
  it('30 rounds of warm-up probes against an engine that is still loading (503) emit no MaxListenersExceededWarning', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    const engine = await startFakeEngine();
    engine.setFault({ kind: 'status', status: 503, message: 'model is loading' });
    const b = new OpenAIBackend({ baseURL: engine.baseURL, warmup: { retryIntervalMs: 1, deadlineMs: 60_000 } });
    try {
      void b.load().catch(() => undefined);
      await until(() => engine.chatBodies().length >= 30, '30 probes');
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message), []);
    } finally {
      process.off('warning', onWarning);
      await b.close();
      await engine.close();
    }
  });

  it('an unreachable engine is logged at once and then rate-limited, and status() carries the cause while loading', async () => {
    const port = await closedPort();
    const mem = memoryLogger();
    const b = new OpenAIBackend({ baseURL: `http://127.0.0.1:${port}/v1`, logger: mem.logger, warmup: { retryIntervalMs: 2, deadlineMs: 60_000, logEveryMs: 60_000 } });
    try {
      void b.load().catch(() => undefined);
      await until(() => (b.status().consecutiveFailures ?? 0) >= 1, 'the first failed probe');
      assert.equal(mem.warns().length, 1, 'the first failure is logged at once');
      assert.match(mem.warns()[0]!.err ?? '', /cannot reach the engine at http:\/\/127\.0\.0\.1:\d+\/v1 \(ECONNREFUSED\)/);
      const st = b.status();
      assert.equal(st.state, 'loading');
      assert.equal(st.code, 'engine_unreachable');
      assert.equal(st.permanent, false);
      assert.match(st.message ?? '', /cannot reach the engine/);
      assert.ok(typeof st.since === 'number');
      await until(() => (b.status().consecutiveFailures ?? 0) >= 20, '20 failed probes');
      assert.equal(mem.warns().length, 1, 'later failures within logEveryMs are not repeated at warn');
    } finally {
      await b.close();
    }
  });

  it('repeats the warning every logEveryMs while the engine stays unreachable', async () => {
    const port = await closedPort();
    const mem = memoryLogger();
    const b = new OpenAIBackend({ baseURL: `http://127.0.0.1:${port}/v1`, logger: mem.logger, warmup: { retryIntervalMs: 2, deadlineMs: 60_000, logEveryMs: 40 } });
    try {
      void b.load().catch(() => undefined);
      await until(() => mem.warns().length >= 3, 'three warnings');
      assert.ok((b.status().consecutiveFailures ?? 0) > mem.warns().length, 'fewer warnings than failures');
    } finally {
      await b.close();
    }
  });

  it('a hanging engine turns status() to error after consecutive timeouts, and back to ready on success', async () => {
    const engine = await startFakeEngine();
    const b = new OpenAIBackend({ baseURL: engine.baseURL, timeoutMs: 200, unhealthyAfterTimeouts: 2 });
    try {
      await b.load();
      engine.setFault({ kind: 'hang' });
      assert.equal((await failure(collect(b.generate(req())))).code, 'engine_timeout');
      assert.equal(b.status().state, 'ready', 'one slow request is not yet a hung engine');
      assert.equal((await failure(collect(b.generate(req())))).code, 'engine_timeout');
      const st = b.status();
      assert.equal(st.state, 'error');
      assert.equal(st.code, 'engine_timeout');
      assert.equal(st.consecutiveFailures, 2);
      assert.match(st.message ?? '', /timed out on 2 requests in a row/);
      engine.setFault(null);
      await until(() => b.status().state === 'ready', 'recovery');
      assert.equal((await collect(b.generate(req()))).at(-1)!.type, 'done');
      assert.equal(b.status().state, 'ready');
    } finally {
      engine.setFault(null);
      await b.close();
      await engine.close();
    }
  });

  it('a refused configuration (bad key) reads error with permanent: true', async () => {
    const engine = await startFakeEngine({ apiKey: 'secret' });
    const b = new OpenAIBackend({ baseURL: engine.baseURL, apiKey: 'wrong' });
    try {
      await assert.rejects(b.load());
      assert.deepEqual({ ...b.status(), since: 0, message: '' }, { state: 'error', code: 'engine_unauthorized', permanent: true, consecutiveFailures: 1, since: 0, message: '' });
    } finally {
      await b.close();
      await engine.close();
    }
  });
});
