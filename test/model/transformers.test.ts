/**
 * TransformersBackend on the random-weight test model: the real, unmodified Transformers.js Gemma 3n
 * pipeline (processor, mel features, image processor, four ONNX Runtime sessions, KV-cache loop,
 * streamer) run offline from disk in a worker thread. The model's scripted reply names the modalities
 * that reached its decoder, which proves frames and audio arrive. Nothing here measures quality or speed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { GenerateEvent, GenerateRequest, ImageInput } from '../../src/model/backend.js';
import { ModelError } from '../../src/model/errors.js';
import { tinyModelReply, TINY_AUDIO_SEQ_LENGTH, TINY_IMAGE_SEQ_LENGTH } from '../../src/model/tiny-model.js';
import { TransformersBackend } from '../../src/model/transformers.js';
import { testJpeg, tinyModelDir, tone } from '../helpers/model.js';

const rgbFrame = (v: number): ImageInput => ({ ptsMs: v, width: 64, height: 48, rgb: Buffer.alloc(64 * 48 * 3, v) });
const clip = (ms: number) => ({ startPtsMs: 0, sampleRate: 16000 as const, samples: tone(ms) });
const req = (over: Partial<GenerateRequest> = {}): GenerateRequest => ({ prompt: 'What is happening?', images: [], maxNewTokens: 32, ...over });

async function collect(it: AsyncIterable<GenerateEvent>) {
  const events: GenerateEvent[] = [];
  for await (const ev of it) events.push(ev);
  const done = events.at(-1);
  assert.ok(done && done.type === 'done', 'ends with done');
  return { events, deltas: events.filter((e) => e.type === 'delta'), done };
}

describe('TransformersBackend on the random-weight test model (offline)', () => {
  let backend: TransformersBackend;

  before(async () => {
    backend = new TransformersBackend({ model: await tinyModelDir() });
    await backend.load();
  });
  after(async () => {
    await backend.close();
  });

  it('loads all four Gemma 3n sessions from disk and reads the token costs from processor_config.json', () => {
    assert.equal(backend.status().state, 'ready');
    assert.deepEqual([...backend.loadedSessions].sort(), ['audio_encoder', 'decoder_model_merged', 'embed_tokens', 'vision_encoder']);
    assert.equal(backend.capabilities.tokensPerImage, TINY_IMAGE_SEQ_LENGTH);
    assert.equal(backend.capabilities.tokensPerAudioClip, TINY_AUDIO_SEQ_LENGTH);
    assert.equal(backend.capabilities.audio, 'raw');
  });

  it('streams tokens for text + 2 frames + audio, and the reply shows both frames and audio reached the decoder', async () => {
    const { deltas, done } = await collect(backend.generate(req({ images: [rgbFrame(10), rgbFrame(200)], audio: clip(2000), system: 'Be terse.' })));
    assert.ok(deltas.length > 1, 'several deltas');
    assert.equal(done.text, tinyModelReply('both'));
    assert.equal(deltas.map((d) => (d.type === 'delta' ? d.text : '')).join(''), done.text);
    assert.equal(done.finishReason, 'stop');
    assert.ok(done.usage.completionTokens! > 1);
    const textOnly = await collect(backend.generate(req({ system: 'Be terse.' })));
    assert.equal(textOnly.done.text, tinyModelReply('text'));
    // each image adds its soft tokens plus <boi>/<eoi> and blank lines; the clip likewise
    const extra = done.usage.promptTokens! - textOnly.done.usage.promptTokens!;
    assert.ok(extra >= 2 * (TINY_IMAGE_SEQ_LENGTH + 2) + TINY_AUDIO_SEQ_LENGTH + 2, `media added ${extra} prompt tokens`);
  });

  it('decodes JPEG frames when no RGB is given', async () => {
    const { done } = await collect(backend.generate(req({ images: [{ ptsMs: 0, width: 64, height: 48, jpeg: testJpeg() }] })));
    assert.equal(done.text, tinyModelReply('image'));
  });

  it('pads a 20 ms clip (below the processor minimum) and truncates a 31 s one instead of failing', async () => {
    assert.equal((await collect(backend.generate(req({ audio: clip(20) })))).done.text, tinyModelReply('audio'));
    assert.equal((await collect(backend.generate(req({ audio: clip(31_000) })))).done.text, tinyModelReply('audio'));
  });

  it('stops at maxNewTokens with finishReason length', async () => {
    const { done } = await collect(backend.generate(req({ maxNewTokens: 2 })));
    assert.equal(done.usage.completionTokens, 2);
    assert.equal(done.finishReason, 'length');
    assert.ok(tinyModelReply('text').startsWith(done.text.trim()));
  });

  it('runs concurrent generations one at a time, each with its own reply', async () => {
    const [a, b] = await Promise.all([
      collect(backend.generate(req({ images: [rgbFrame(1)] }))),
      collect(backend.generate(req({ audio: clip(500) }))),
    ]);
    assert.equal(a.done.text, tinyModelReply('image'));
    assert.equal(b.done.text, tinyModelReply('audio'));
  });

  it('aborting rejects promptly with an AbortError and the next generation still works', async () => {
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 1);
    await assert.rejects(collect(backend.generate(req({ images: [rgbFrame(3), rgbFrame(4)], signal: ac.signal }))), (err: Error) => err.name === 'AbortError');
    assert.ok(Date.now() - t0 < 1000);
    const pre = new AbortController();
    pre.abort();
    await assert.rejects(collect(backend.generate(req({ signal: pre.signal }))), (err: Error) => err.name === 'AbortError');
    assert.equal((await collect(backend.generate(req()))).done.text, tinyModelReply('text'));
  });
});

describe('TransformersBackend load failures', () => {
  it('reports model_load_failed and status error for a directory without a model', async () => {
    const b = new TransformersBackend({ model: '/nonexistent/gemma3n-model-dir' });
    try {
      await assert.rejects(b.load(), (err: ModelError) => err.code === 'model_load_failed' && /nonexistent/.test(err.message));
      assert.equal(b.status().state, 'error');
    } finally {
      await b.close();
    }
  });
});
