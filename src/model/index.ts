/**
 * Backend selection: `createBackend(config.backend)`, where the BackendConfig comes from the runtime
 * configuration schema (src/config/runtime.ts: the BACKEND, MODEL_*, OPENAI_*, REQUEST_TIMEOUT_MS, …
 * settings, their defaults and their validation). This module reads no environment itself.
 * The defaults and `parseDtype` live in defaults.ts (import-free, for the schema); re-exported here.
 */
import type { BackendCapabilities, ModelBackend } from './backend.js';
import { DEFAULT_OPENAI_MODEL, DEFAULT_TRANSFORMERS_MODEL, defaultModelCacheDir, invalidModelConfig, parseDtype, type BackendConfig, type BackendKind } from './defaults.js';
import { OpenAIBackend } from './openai.js';
import { TransformersBackend } from './transformers.js';

export { parseDtype, type BackendConfig, type BackendKind };

export function createBackend(cfg: BackendConfig): ModelBackend {
  if (cfg.backend === 'openai') {
    if (!cfg.baseURL) throw invalidModelConfig('the openai backend needs a base URL');
    return new OpenAIBackend({
      baseURL: cfg.baseURL,
      modelId: cfg.modelId,
      timeoutMs: cfg.timeoutMs,
      ...(cfg.apiKey ? { apiKey: cfg.apiKey } : {}),
      capabilities: {
        ...(cfg.maxImages !== undefined ? { maxImages: cfg.maxImages } : {}),
        ...(cfg.audioPart !== undefined ? { audioPart: cfg.audioPart } : {}),
      },
      ...(cfg.warmupDeadlineMs !== undefined ? { warmup: { deadlineMs: cfg.warmupDeadlineMs } } : {}),
      ...(cfg.audioPadSamples !== undefined ? { audioPadSamples: cfg.audioPadSamples } : {}),
    });
  }
  return new TransformersBackend({
    model: cfg.modelDir ?? cfg.modelId,
    // --model-dir is a directory even when it is missing: say so, rather than treat it as a hub id
    ...(cfg.modelDir !== undefined ? { local: true } : {}),
    ...(cfg.dtype !== undefined ? { dtype: cfg.dtype } : {}),
    device: cfg.device ?? 'cpu',
    ...(cfg.cacheDir ? { cacheDir: cfg.cacheDir } : {}),
    ...(cfg.allowRemote !== undefined ? { allowRemote: cfg.allowRemote } : {}),
    ...(cfg.maxImages !== undefined ? { maxImages: cfg.maxImages } : {}),
    ...(cfg.onProgress ? { onProgress: cfg.onProgress } : {}),
  });
}

export type BackendDescription = {
  backend: BackendKind;
  model_id: string;
  capabilities: {
    images: boolean;
    max_images: number;
    audio: BackendCapabilities['audio'];
    tokens_per_image: number | undefined;
    tokens_per_audio_clip: number | undefined;
    /** 'json_schema' when the backend can constrain decoding (`output_schema`), else null. */
    structured_output: 'json_schema' | null;
  };
  /**
   * openai: the engine base URL and its max_model_len once known; transformers: dtype/device, whether
   * the model is a local directory, the cache directory and whether it is the random-weight test model.
   */
  engine: Record<string, unknown>;
};

/** What /version and /hardware/info report about the model backend. */
export function describeBackend(backend: ModelBackend): BackendDescription {
  const c = backend.capabilities;
  let engine: Record<string, unknown> = {};
  if (backend instanceof OpenAIBackend) {
    engine = { base_url: backend.baseURL, ...(c.maxContextTokens !== undefined ? { max_model_len: c.maxContextTokens } : {}) };
  } else if (backend instanceof TransformersBackend) {
    engine = {
      runtime: 'transformers.js+onnxruntime-node',
      dtype: backend.dtype,
      device: backend.device,
      local: backend.local,
      cache_dir: backend.cacheDir,
      ...(backend.testModel ? { test_model: true } : {}),
    };
  }
  return {
    backend: backend.kind,
    model_id: backend.modelId,
    capabilities: {
      images: c.images,
      max_images: c.maxImages,
      audio: c.audio,
      tokens_per_image: c.tokensPerImage,
      tokens_per_audio_clip: c.tokensPerAudioClip,
      structured_output: c.structuredOutput ?? null,
    },
    engine,
  };
}

export { ModelError, ModelAbortError, isAbortError } from './errors.js';
export { OpenAIBackend, type OpenAIBackendOptions } from './openai.js';
export { TransformersBackend, type TransformersBackendOptions } from './transformers.js';
export { tinyModelReply, tinyModelMode, TINY_MODEL_LABEL } from './defaults.js';

/** Writes the random-weight test model (src/model/tiny-model.ts, loaded only when called: it brings the ONNX encoder). */
export async function makeTinyModel(dir: string): Promise<void> {
  const { makeTinyModel: make } = await import('./tiny-model.js');
  await make(dir);
}
