/**
 * TransformersBackend on the random-weight test model: the real, unmodified Transformers.js Gemma 3n
 * pipeline (processor, mel features, image processor, four ONNX Runtime sessions, KV-cache loop,
 * streamer) run offline from disk in a worker thread. The model's scripted reply names the modalities
 * that reached its decoder, which proves frames and audio arrive. Nothing here measures quality or speed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { GenerateEvent, GenerateRequest, ImageInput } from '../../src/model/backend.js';
import { ModelError } from '../../src/model/errors.js';
import { tinyModelReply, TINY_AUDIO_SEQ_LENGTH, TINY_IMAGE_SEQ_LENGTH } from '../../src/model/tiny-model.js';
import { cudaProviderInstalled, TransformersBackend } from '../../src/model/transformers.js';
import { createBackend, describeBackend } from '../../src/model/index.js';
import { backendConfigFrom } from '../../src/config/runtime.js';
import { pino } from 'pino';
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
  const lines: Array<{ level: number; msg: string }> = [];

  before(async () => {
    const logger = pino({ level: 'debug' }, { write: (l: string) => void lines.push(JSON.parse(l) as { level: number; msg: string }) });
    backend = new TransformersBackend({ model: await tinyModelDir(), maxImages: 8, logger });
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

  it('a local model dir logs no false "downloading" lines, and serving the tiny model warns that it is a random-weight TEST model', () => {
    assert.deepEqual(lines.filter((l) => /download/.test(l.msg)).map((l) => l.msg), []);
    assert.ok(lines.some((l) => l.level === 40 && /random-weight TEST model/.test(l.msg)), 'warns about the test model');
    assert.equal(describeBackend(backend).engine.test_model, true);
  });

  it('samples through the nucleus processor in the real worker (temperature and top_p set) and still follows the model', async () => {
    const { done } = await collect(backend.generate(req({ sampling: { temperature: 0.7, topP: 0.9 } })));
    assert.equal(done.text, tinyModelReply('text'));
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

describe('TransformersBackend operator-facing behaviour', () => {
  it('defaults to 1 image per request on cpu and merges a partial dtype map over the default map', () => {
    const b = new TransformersBackend({ model: 'onnx-community/gemma-3n-E2B-it-ONNX', dtype: { decoder_model_merged: 'q4f16' } });
    assert.equal(b.capabilities.maxImages, 1);
    assert.deepEqual(b.dtype, { embed_tokens: 'q8', audio_encoder: 'q8', vision_encoder: 'q8', decoder_model_merged: 'q4f16' });
    assert.equal(new TransformersBackend({ device: 'cuda' }).capabilities.maxImages, 8);
  });
});

describe('TransformersBackend load failures', () => {
  it('a missing --model-dir (even a relative one) fails with a clear message, permanently, saying a restart is needed', async () => {
    const b = createBackend(backendConfigFrom({}, { backend: 'transformers', modelDir: 'no-such-dir/gemma3n' }));
    try {
      await assert.rejects(b.load(), (err: ModelError) => err.code === 'model_load_failed' && /model directory .*no-such-dir\/gemma3n does not exist \(--model-dir/.test(err.message));
      const st = b.status();
      assert.equal(st.state, 'error');
      assert.equal(st.code, 'model_load_failed');
      assert.equal(st.permanent, true);
      assert.match(st.message ?? '', /restart the runner/);
      await assert.rejects(b.load(), /does not exist/, 'a second load reports the same cause');
    } finally {
      await b.close();
    }
  });

  it('--device cuda on a host without the ONNX Runtime CUDA provider fails with a clear message, not raw ORT errors', async () => {
    const b = new TransformersBackend({ model: await tinyModelDir(), device: 'cuda' });
    try {
      if (cudaProviderInstalled().installed) {
        // a CUDA host: loading may work; if it fails, the message still says what to do
        await b.load().catch((err: ModelError) => assert.match(err.message, /--device cpu/));
      } else {
        await assert.rejects(b.load(), (err: ModelError) => /CUDA provider is not installed/.test(err.message) && /use --device cpu/.test(err.message));
      }
    } finally {
      await b.close();
    }
  });

  it('an unwritable model cache directory fails with a message naming MODEL_CACHE_DIR', async () => {
    // a path under a regular file can never be created, whoever runs the test (root included)
    const root = mkdtempSync(join(tmpdir(), 'cache-parent-'));
    writeFileSync(join(root, 'file'), '');
    const cacheDir = join(root, 'file', 'models');
    const b = new TransformersBackend({ model: 'onnx-community/gemma-3n-E2B-it-ONNX', cacheDir });
    try {
      await assert.rejects(b.load(), (err: ModelError) => err.message.includes(`${cacheDir} is not writable (ENOTDIR)`) && /MODEL_CACHE_DIR/.test(err.message));
    } finally {
      await b.close();
      rmSync(root, { recursive: true, force: true });
    }
  });

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
