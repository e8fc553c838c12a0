/**
 * The model layer's defaults and the parsing of its settings, with no engine SDK, ONNX or worker
 * imports: the runtime configuration schema (src/config/runtime.ts) and the CLI load this to document,
 * default and validate BACKEND, MODEL_*, OPENAI_* and REQUEST_TIMEOUT_MS without paying for the
 * backends themselves (a `trickle-server` or `--help` invocation never loads them).
 *
 * `parseDtype` (MODEL_DTYPE / --dtype: `q4`, `embed_tokens=q8,decoder_model_merged=q4` or JSON; values
 * checked against the Transformers.js dtypes, a partial map is merged over the default map by the
 * backend) lives here because the valid lists are the model layer's.
 */
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { AppError } from '../errors.js';
import type { DtypeOption, ProgressEvent } from './transformers-protocol.js';

export const DEFAULT_OPENAI_MODEL = 'google/gemma-3n-E4B-it';
/** REQUEST_TIMEOUT_MS default: the whole request, stalls included. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/** ENGINE_WARMUP_DEADLINE_MS default: how long the engine may take to answer before /health reads ERROR. */
export const DEFAULT_WARMUP_DEADLINE_MS = 600_000;

/** What the generated random-weight test model calls itself (src/model/tiny-model.ts). */
export const TINY_MODEL_LABEL = 'tiny-random-gemma3n (random-weight test model, NOT a real Gemma 3n)';

/**
 * What the tiny model's scripted decoder names: the modalities that reached it. Here, not in the
 * generator, so that what only needs the reply (the fake engine, every test that uses it) does not load
 * the ONNX protobuf encoder.
 */
export type TinyModelMode = 'text' | 'image' | 'audio' | 'both';
export const TINY_MODEL_MODES: readonly TinyModelMode[] = ['text', 'image', 'audio', 'both'];

/** The exact text the tiny model replies with (special tokens skipped) for a given set of inputs. */
export function tinyModelReply(mode: TinyModelMode): string {
  return `${mode} (random-weight test model)`;
}

/** Which mode the tiny model will name for a request. */
export function tinyModelMode(hasImages: boolean, hasAudio: boolean): TinyModelMode {
  return TINY_MODEL_MODES[(hasImages ? 1 : 0) + (hasAudio ? 2 : 0)]!;
}

export const DEFAULT_TRANSFORMERS_MODEL = 'onnx-community/gemma-3n-E2B-it-ONNX';
/**
 * Per-session dtypes for CPU: 8-bit embeddings/encoders and a 4-bit decoder (≈5 GB for E2B). A single
 * dtype string applies to every session; file suffixes follow Transformers.js (q8 → `_quantized`).
 */
export const DEFAULT_DTYPE: Record<string, string> = {
  embed_tokens: 'q8',
  audio_encoder: 'q8',
  vision_encoder: 'q8',
  decoder_model_merged: 'q4',
};

/** The ONNX sessions of a Gemma 3n export (Transformers.js session_config for ImageAudioTextToText). */
export const MODEL_SESSIONS = Object.keys(DEFAULT_DTYPE);
/** Transformers.js 4.3.1 DATA_TYPES (src/utils/dtypes.js); anything else would fail deep inside the load. */
export const VALID_DTYPES = ['auto', 'fp32', 'fp16', 'q8', 'int8', 'uint8', 'q4', 'bnb4', 'q4f16', 'q2', 'q2f16', 'q1', 'q1f16'] as const;

/** $XDG_CACHE_HOME (or ~/.cache)/gemma3n-trickle/models: a per-user dir that survives `npm ci`. */
export function defaultModelCacheDir(env: Record<string, string | undefined> = process.env, home: string = homedir()): string {
  const base = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : join(home, '.cache');
  return join(base, 'gemma3n-trickle', 'models');
}

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

/** A model setting the runner cannot use (the CLI prints it; the server never starts). */
export function invalidModelConfig(message: string): AppError {
  return new AppError('invalid_config', message);
}

function checkDtypeValue(v: string, where: string): void {
  if (!(VALID_DTYPES as readonly string[]).includes(v)) {
    throw invalidModelConfig(`MODEL_DTYPE / --dtype: unknown dtype "${v}"${where}; valid: ${VALID_DTYPES.join(', ')}`);
  }
}

function checkDtypeMap(map: Record<string, string>): Record<string, string> {
  for (const [k, v] of Object.entries(map)) {
    if (!MODEL_SESSIONS.includes(k)) throw invalidModelConfig(`MODEL_DTYPE / --dtype: unknown session "${k}"; valid: ${MODEL_SESSIONS.join(', ')}`);
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
      throw invalidModelConfig(`MODEL_DTYPE / --dtype: not valid JSON: ${raw}`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed) || Object.values(parsed).some((v) => typeof v !== 'string')) {
      throw invalidModelConfig(`MODEL_DTYPE / --dtype: expected a JSON object of strings, got ${raw}`);
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
    if (!k || !v) throw invalidModelConfig(`MODEL_DTYPE / --dtype: bad entry "${pair}"`);
    map[k] = v;
  }
  return checkDtypeMap(map);
}
