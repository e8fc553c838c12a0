/**
 * Backend selection: `createBackend(config.backend)`, where the BackendConfig comes from the runtime
 * configuration schema (src/config/runtime.ts: the BACKEND, MODEL_*, OPENAI_*, REQUEST_TIMEOUT_MS, …
 * settings, their defaults and their validation). This module reads no environment itself.
 *
 * `parseDtype` (MODEL_DTYPE / --dtype: `q4`, `embed_tokens=q8,decoder_model_merged=q4` or JSON; values
 * checked against the Transformers.js dtypes, a partial map is merged over the default map) lives here
 * because the valid lists are the model layer's.
 */
import { AppError } from '../errors.js';
import type { BackendCapabilities, ModelBackend } from './backend.js';
import { DEFAULT_OPENAI_MODEL, OpenAIBackend } from './openai.js';
import {
  defaultModelCacheDir,
  DEFAULT_TRANSFORMERS_MODEL,
  MODEL_SESSIONS,
  TransformersBackend,
  VALID_DTYPES,
  type DtypeOption,
  type ProgressEvent,
} from './transformers.js';

export type BackendKind = 'openai' | 'transformers';

/** A fully resolved backend configuration (see src/config/runtime.ts for where each field comes from). */
export interface BackendConfig {
  backend: BackendKind;
  /** Engine model id (openai) or hub id (transformers). */
  modelId: string;
  baseURL?: string;
  apiKey?: string;
  timeoutMs: number;
  /** transformers: a local model directory; wins over modelId. */
  modelDir?: string;
  dtype?: DtypeOption;
  device?: string;
  cacheDir?: string;
  allowRemote?: boolean;
  maxImages?: number;
  audioPart?: 'input_audio' | 'audio_url' | null;
  warmupDeadlineMs?: number;
  /** openai: every audio clip padded to this many 16 kHz samples (AUDIO_PAD_S × 16000). */
  audioPadSamples?: number;
  onProgress?: (p: ProgressEvent) => void;
}

function invalid(message: string): AppError {
  return new AppError('invalid_config', message, { httpStatus: 400 });
}

function checkDtypeValue(v: string, where: string): void {
  if (!(VALID_DTYPES as readonly string[]).includes(v)) {
    throw invalid(`MODEL_DTYPE / --dtype: unknown dtype "${v}"${where}; valid: ${VALID_DTYPES.join(', ')}`);
  }
}

function checkDtypeMap(map: Record<string, string>): Record<string, string> {
  for (const [k, v] of Object.entries(map)) {
    if (!MODEL_SESSIONS.includes(k)) throw invalid(`MODEL_DTYPE / --dtype: unknown session "${k}"; valid: ${MODEL_SESSIONS.join(', ')}`);
    checkDtypeValue(v, ` for ${k}`);
  }
  return map;
}

/**
 * `q4` → 'q4'; `a=q8,b=q4` or `{"a":"q8"}` → a per-session map (merged over the default map by the
 * backend). Unknown dtypes and session names are refused with the valid lists.
 */
export function parseDtype(raw: string): DtypeOption {
  const text = raw.trim();
  if (text.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw invalid(`MODEL_DTYPE / --dtype: not valid JSON: ${raw}`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed) || Object.values(parsed).some((v) => typeof v !== 'string')) {
      throw invalid(`MODEL_DTYPE / --dtype: expected a JSON object of strings, got ${raw}`);
    }
    return checkDtypeMap(parsed as Record<string, string>);
  }
  if (!text.includes('=')) {
    checkDtypeValue(text, '');
    return text;
  }
  const map: Record<string, string> = {};
  for (const pair of text.split(',')) {
    const [k, v] = pair.split('=').map((x) => x.trim());
    if (!k || !v) throw invalid(`MODEL_DTYPE / --dtype: bad entry "${pair}"`);
    map[k] = v;
  }
  return checkDtypeMap(map);
}

export function createBackend(cfg: BackendConfig): ModelBackend {
  if (cfg.backend === 'openai') {
    if (!cfg.baseURL) throw invalid('the openai backend needs a base URL');
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
export { makeTinyModel, tinyModelReply, tinyModelMode, TINY_MODEL_LABEL } from './tiny-model.js';
