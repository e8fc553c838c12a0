/** Backend selection from env/flags, request shaping helpers, WAV encoding and the tiny-model generator. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { encodeWavPcm16, fitAudioSamples, mergeAudioClips } from '../../src/model/audio.js';
import { createBackend, describeBackend, parseDtype } from '../../src/model/index.js';
import { backendConfigFrom } from '../../src/config/runtime.js';
import { OpenAIBackend } from '../../src/model/openai.js';
import { pickEvenly } from '../../src/model/request.js';
import { makeTinyModel, TINY_MODEL_FINGERPRINT_FILE } from '../../src/model/tiny-model.js';
import { TransformersBackend } from '../../src/model/transformers.js';

describe('backend selection', () => {
  it('defaults to the in-process backend with the E2B ONNX export when no engine URL is set', () => {
    const cfg = backendConfigFrom({});
    assert.equal(cfg.backend, 'transformers');
    assert.equal(cfg.modelId, 'onnx-community/gemma-3n-E2B-it-ONNX');
  });

  it('picks the OpenAI backend and E4B when OPENAI_BASE_URL or VLLM_BASE_URL is set', () => {
    for (const key of ['OPENAI_BASE_URL', 'VLLM_BASE_URL']) {
      const cfg = backendConfigFrom({ [key]: 'http://vllm:8000/v1', OPENAI_API_KEY: 'k', REQUEST_TIMEOUT_MS: '1234' });
      assert.equal(cfg.backend, 'openai');
      assert.equal(cfg.baseURL, 'http://vllm:8000/v1');
      assert.equal(cfg.modelId, 'google/gemma-3n-E4B-it');
      assert.equal(cfg.timeoutMs, 1234);
      assert.equal(cfg.apiKey, 'k');
    }
  });

  it('lets flags override the environment and parses dtype strings and maps', () => {
    const cfg = backendConfigFrom({ OPENAI_BASE_URL: 'http://x/v1', MODEL_DTYPE: 'q4' }, { backend: 'transformers', modelDir: '/m', dtype: 'embed_tokens=q8,decoder_model_merged=q4' });
    assert.equal(cfg.backend, 'transformers');
    assert.equal(cfg.modelDir, '/m');
    assert.deepEqual(cfg.dtype, { embed_tokens: 'q8', decoder_model_merged: 'q4' });
    assert.equal(parseDtype('q4f16'), 'q4f16');
    assert.deepEqual(parseDtype('{"vision_encoder":"fp16"}'), { vision_encoder: 'fp16' });
  });

  it('rejects unknown backends, devices and audio parts, and an openai backend without a URL', () => {
    assert.throws(() => backendConfigFrom({ BACKEND: 'llamacpp' }), /BACKEND/);
    assert.throws(() => backendConfigFrom({ MODEL_DEVICE: 'tpu' }), /MODEL_DEVICE/);
    assert.throws(() => backendConfigFrom({ MODEL_AUDIO_PART: 'mp3' }), /MODEL_AUDIO_PART/);
    assert.throws(() => backendConfigFrom({ BACKEND: 'openai' }), /OPENAI_BASE_URL/);
  });

  it('creates the configured backend and describes it for /version', async () => {
    const oa = createBackend(backendConfigFrom({ VLLM_BASE_URL: 'http://127.0.0.1:9/v1', MODEL_AUDIO_PART: 'audio_url', MODEL_MAX_IMAGES: '4' }));
    assert.ok(oa instanceof OpenAIBackend);
    assert.deepEqual(describeBackend(oa), {
      backend: 'openai',
      model_id: 'google/gemma-3n-E4B-it',
      capabilities: { images: true, max_images: 4, audio: 'audio_url', tokens_per_image: 256, tokens_per_audio_clip: 188, structured_output: 'json_schema' },
      engine: { base_url: 'http://127.0.0.1:9/v1' },
    });
    const tf = createBackend(backendConfigFrom({}));
    assert.ok(tf instanceof TransformersBackend);
    const d = describeBackend(tf);
    assert.equal(d.backend, 'transformers');
    assert.equal(d.capabilities.audio, 'raw');
    assert.equal(d.capabilities.structured_output, null, 'the in-process backend cannot constrain decoding');
    assert.equal(d.engine.device, 'cpu');
    await oa.close();
    await tf.close();
  });
});

describe('in-process model settings', () => {
  it('refuses an unknown dtype or session name with the valid list', () => {
    assert.throws(() => parseDtype('q3'), /unknown dtype "q3"; valid: auto, fp32, fp16, q8, int8, uint8, q4, bnb4, q4f16/);
    assert.throws(() => backendConfigFrom({}, { dtype: 'q3' }), /unknown dtype "q3"/);
    assert.throws(() => parseDtype('vision_encoder=q5'), /unknown dtype "q5" for vision_encoder/);
    assert.throws(() => parseDtype('vision_encodr=q8'), /unknown session "vision_encodr"; valid: embed_tokens, audio_encoder, vision_encoder, decoder_model_merged/);
    assert.throws(() => parseDtype('{"vision_encoder":'), /not valid JSON/);
  });

  it('merges a partial --dtype map over the default map instead of leaving the other graphs at fp32', () => {
    const b = createBackend(backendConfigFrom({}, { dtype: 'embed_tokens=q8,decoder_model_merged=q4f16' }));
    assert.deepEqual(describeBackend(b).engine.dtype, { embed_tokens: 'q8', audio_encoder: 'q8', vision_encoder: 'q8', decoder_model_merged: 'q4f16' });
    assert.equal(describeBackend(createBackend(backendConfigFrom({ MODEL_DTYPE: 'fp16' }))).engine.dtype, 'fp16', 'one dtype still applies to every graph');
  });

  it('caches the model in a user cache dir (XDG_CACHE_HOME or ~/.cache), never inside node_modules; MODEL_CACHE_DIR overrides', () => {
    const dir = (env: Record<string, string>) => describeBackend(createBackend(backendConfigFrom(env))).engine.cache_dir;
    assert.equal(dir({ XDG_CACHE_HOME: '/var/cache/u' }), '/var/cache/u/gemma3n-trickle/models');
    assert.equal(dir({}), join(homedir(), '.cache', 'gemma3n-trickle', 'models'));
    assert.equal(dir({ XDG_CACHE_HOME: '/var/cache/u', MODEL_CACHE_DIR: '/models' }), '/models');
    assert.doesNotMatch(String(new TransformersBackend().cacheDir), /node_modules/);
  });

  it('defaults to one frame per request on cpu', () => {
    assert.equal(createBackend(backendConfigFrom({})).capabilities.maxImages, 1);
    assert.equal(createBackend(backendConfigFrom({ MODEL_MAX_IMAGES: '2' })).capabilities.maxImages, 2);
  });
});

describe('engine audio padding', () => {
  it('AUDIO_PAD_S sets the server-wide clip length (default 30 s), within 1–30 s', () => {
    assert.equal(backendConfigFrom({ VLLM_BASE_URL: 'http://x/v1', AUDIO_PAD_S: '10' }).audioPadSamples, 160000);
    assert.equal(backendConfigFrom({ VLLM_BASE_URL: 'http://x/v1' }).audioPadSamples, undefined);
    assert.throws(() => backendConfigFrom({ VLLM_BASE_URL: 'http://x/v1', AUDIO_PAD_S: '0' }), /AUDIO_PAD_S/);
    assert.throws(() => backendConfigFrom({ VLLM_BASE_URL: 'http://x/v1', AUDIO_PAD_S: '31' }), /AUDIO_PAD_S/);
    assert.equal(fitAudioSamples(new Float32Array(320), 480000).length, 480000);
    assert.equal(fitAudioSamples(new Float32Array(100000), 480000).length, 480000);
  });
});

describe('request shaping', () => {
  it('pickEvenly keeps first and last and spreads the rest', () => {
    assert.deepEqual(pickEvenly([0, 1, 2, 3, 4, 5, 6, 7, 8], 3), [0, 4, 8]);
    assert.deepEqual(pickEvenly([1, 2], 5), [1, 2]);
    assert.deepEqual(pickEvenly([1, 2, 3], 0), []);
  });

  it('pads audio to 1 s, caps it at 30 s and merges clips in time order', () => {
    assert.equal(fitAudioSamples(new Float32Array(320)).length, 16000);
    assert.equal(fitAudioSamples(new Float32Array(16000 * 31)).length, 16000 * 30);
    const merged = mergeAudioClips([
      { startPtsMs: 100, sampleRate: 16000, samples: Float32Array.of(3, 4) },
      { startPtsMs: 0, sampleRate: 16000, samples: Float32Array.of(1, 2) },
    ]);
    assert.deepEqual([...merged!.samples], [1, 2, 3, 4]);
    assert.equal(merged!.startPtsMs, 0);
  });

  it('encodes a 16 kHz mono PCM16 WAV with clipping', () => {
    const wav = encodeWavPcm16(Float32Array.of(0, 1, -1, 2));
    assert.equal(wav.length, 44 + 8);
    assert.equal(wav.readUInt32LE(24), 16000);
    assert.deepEqual([wav.readInt16LE(44), wav.readInt16LE(46), wav.readInt16LE(48), wav.readInt16LE(50)], [0, 32767, -32768, 32767]);
  });
});

describe('make-tiny-model', () => {
  it('writes the Gemma 3n ONNX export layout deterministically, labelled as a random-weight test model', async () => {
    const root = await mkdtemp(join(tmpdir(), 'tiny-det-'));
    try {
      await makeTinyModel(join(root, 'a'));
      // b holds a model from some other generator (a stale fingerprint): it is written anew.
      await mkdir(join(root, 'b'), { recursive: true });
      await writeFile(join(root, 'b', TINY_MODEL_FINGERPRINT_FILE), 'an older generator');
      await makeTinyModel(join(root, 'b'));
      const files = (await readdir(join(root, 'a'), { recursive: true })).sort();
      assert.ok(files.includes(TINY_MODEL_FINGERPRINT_FILE), 'a complete model names its generator');
      // a already holds this generator's model: left as it is (nothing rewritten).
      const before = (await stat(join(root, 'a', 'tokenizer.json'))).mtimeMs;
      await makeTinyModel(join(root, 'a'));
      assert.equal((await stat(join(root, 'a', 'tokenizer.json'))).mtimeMs, before, 'a current model is not rewritten');
      assert.deepEqual((await readdir(join(root, 'a'), { recursive: true })).sort(), files, 'no temp files left');
      for (const f of ['config.json', 'generation_config.json', 'preprocessor_config.json', 'processor_config.json', 'tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja']) {
        assert.ok(files.includes(f), f);
      }
      for (const stem of ['embed_tokens', 'vision_encoder', 'audio_encoder', 'decoder_model_merged']) assert.ok(files.includes(join('onnx', `${stem}.onnx`)), stem);
      for (const f of files.filter((x) => x.includes('.'))) {
        const [a, b] = await Promise.all([readFile(join(root, 'a', f)), readFile(join(root, 'b', f))]);
        assert.equal(createHash('sha256').update(a).digest('hex'), createHash('sha256').update(b).digest('hex'), `${f} differs between runs`);
      }
      const config = JSON.parse(await readFile(join(root, 'a', 'config.json'), 'utf8')) as Record<string, unknown>;
      assert.match(String(config._comment), /random-weight test model/);
      const tok = JSON.parse(await readFile(join(root, 'a', 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } };
      assert.equal(tok.model.vocab['<audio_soft_token>'], 262273);
      assert.equal(tok.model.vocab['<image_soft_token>'], 262145);
      assert.equal(tok.model.vocab['<start_of_audio>'], 256000);
      assert.equal(tok.model.vocab['<end_of_image>'], 262144);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
