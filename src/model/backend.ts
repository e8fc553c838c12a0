/**
 * The one interface the generation loop uses to talk to Gemma 3n. Two real implementations live
 * beside it: `openai.ts` (any OpenAI-compatible engine; vLLM in production) and `transformers.ts`
 * (in-process Transformers.js + ONNX Runtime). Each declares its capabilities so the loop never sends
 * a request the engine would reject.
 */
import type { ErrorCode } from '../error-codes.js';

/** One sampled video frame. JPEG is what remote engines take; RGB is what the in-process one takes. */
export interface ImageInput {
  ptsMs: number;
  width: number;
  height: number;
  /** Baseline JPEG bytes. */
  jpeg?: Buffer;
  /** Packed RGB24, width*height*3 bytes. */
  rgb?: Buffer;
}

/** One audio clip: 16 kHz mono float32 in [-1, 1]. */
export interface AudioInput {
  startPtsMs: number;
  sampleRate: 16000;
  samples: Float32Array;
}

export interface SamplingOptions {
  temperature?: number;
  topP?: number;
  topK?: number;
}

export interface ChatTurn {
  role: 'user' | 'assistant';
  text: string;
}

export interface GenerateRequest {
  prompt: string;
  /** Optional system text (prefixed to the first user turn by Gemma's template). */
  system?: string;
  /** Earlier text-only turns (context across cycles), oldest first. */
  history?: ChatTurn[];
  images: ImageInput[];
  audio?: AudioInput;
  maxNewTokens: number;
  sampling?: SamplingOptions;
  /**
   * Constrain the answer to a JSON Schema (OpenAI `response_format: json_schema`; vLLM guided
   * decoding). Only sent to a backend whose `capabilities.structuredOutput` is 'json_schema'.
   */
  responseFormat?: JsonSchemaFormat;
  signal?: AbortSignal;
}

export interface JsonSchemaFormat {
  type: 'json_schema';
  /** ^[A-Za-z0-9_-]{1,64}$ (OpenAI's rule for the name). */
  name: string;
  schema: Record<string, unknown>;
  strict?: boolean;
}

export interface Usage {
  promptTokens?: number;
  completionTokens?: number;
}

export interface GenerateTimings {
  /** Time spent turning the request into what the engine takes (JPEG/WAV/base64 or processor). */
  encodeMs: number;
  /** From request sent to first text delta. */
  firstTokenMs?: number;
  /** From request sent to last byte. */
  modelMs: number;
  /** How long the request waited for the shared backend (fair-scheduler.ts), when it was scheduled. */
  queueMs?: number;
}

export type GenerateEvent =
  | { type: 'delta'; text: string }
  | { type: 'done'; text: string; usage: Usage; timings: GenerateTimings; finishReason?: string };

export interface BackendCapabilities {
  images: boolean;
  /**
   * How the backend takes images: baseline JPEG bytes (engines over HTTP) or packed RGB24 (in-process
   * processors). Media produces exactly this; nothing outside src/model/ branches on the backend kind.
   * Absent means 'jpeg'.
   */
  imageEncoding?: 'jpeg' | 'rgb';
  /** Most images one request may carry. */
  maxImages: number;
  /** How audio travels: OpenAI `input_audio`, an `audio_url` data URL, raw samples in-process, or not at all. */
  audio: 'input_audio' | 'audio_url' | 'raw' | null;
  /**
   * Prompt tokens one image / one audio clip costs on this model. Absent means the real Gemma 3n values
   * (TOKENS_PER_IMAGE / TOKENS_PER_AUDIO_CLIP); the in-process backend reads them from the model's
   * processor_config.json (the random-weight test model uses smaller ones). Use `mediaTokenCosts()`.
   */
  tokensPerImage?: number;
  tokensPerAudioClip?: number;
  /**
   * The engine's context length (prompt + completion tokens), when it reports one (vLLM's
   * `max_model_len` on GET /v1/models, read at warm-up). Requests over it fail with
   * `context_length_exceeded` before they are sent.
   */
  maxContextTokens?: number;
  /**
   * Whether the backend can constrain decoding to a JSON Schema: 'json_schema' (it forwards
   * `responseFormat` to an engine that enforces it). Absent: it cannot, and a stream asking for
   * `output_schema` is refused unless the operator accepts best-effort parsing.
   */
  structuredOutput?: 'json_schema';
}

export type BackendState = 'loading' | 'ready' | 'error';

/**
 * What a backend says about itself. `state` and `message` are the original shape; the other fields are
 * optional additions so a caller (the control API, /health) can answer at once and truthfully.
 */
export interface BackendStatus {
  state: BackendState;
  /** Human-readable reason for 'loading'/'error' (the cause, e.g. "cannot reach the engine at …"). */
  message?: string;
  /** Stable code of the failure behind the current state (a registered ErrorCode), when there is one. */
  code?: ErrorCode;
  /**
   * true: the condition will not clear on its own (bad config, a model that failed to load): the
   * runner must be reconfigured/restarted. false/absent: the backend keeps retrying and may recover.
   */
  permanent?: boolean;
  /** Failed probes or requests in a row behind the current state. */
  consecutiveFailures?: number;
  /** Epoch ms when the current state began. */
  since?: number;
}

export interface ModelBackend {
  readonly kind: 'openai' | 'transformers';
  readonly modelId: string;
  readonly capabilities: BackendCapabilities;
  /** Loads weights or warms up the engine. Resolves when ready; status() tracks progress and failures. */
  load(): Promise<void>;
  status(): BackendStatus;
  /** Streams text deltas, then exactly one `done`. Aborting `signal` rejects with an AbortError. */
  generate(req: GenerateRequest): AsyncIterable<GenerateEvent>;
  /** Text-token count for gating; an estimate where the backend has no tokenizer. */
  countTextTokens(text: string): number;
  close(): Promise<void>;
}

/** Gemma 3n's fixed multimodal costs (model card; vLLM gemma3n_mm.py; processor). */
export const TOKENS_PER_IMAGE = 256;
export const TOKENS_PER_AUDIO_CLIP = 188;
/** `<start_of_image>`/`<end_of_image>` + the "\n\n" separators the processor adds around each item. */
export const IMAGE_DELIMITER_TOKENS = 4;
export const AUDIO_DELIMITER_TOKENS = 4;
/** `<bos><start_of_turn>user\n … <end_of_turn>\n<start_of_turn>model\n` */
export const TURN_MARKUP_TOKENS = 10;

/** Per-item prompt-token costs for a backend, with the Gemma 3n defaults filled in. */
export function mediaTokenCosts(caps: BackendCapabilities): { image: number; audioClip: number } {
  return {
    image: (caps.tokensPerImage ?? TOKENS_PER_IMAGE) + IMAGE_DELIMITER_TOKENS,
    audioClip: (caps.tokensPerAudioClip ?? TOKENS_PER_AUDIO_CLIP) + AUDIO_DELIMITER_TOKENS,
  };
}

/**
 * Text-token estimate for gating when no tokenizer is at hand (Gemma's SentencePiece averages about
 * 4 bytes per token on English; 3 over-counts on purpose so a budget is never exceeded by the estimate).
 */
export function estimateTextTokens(text: string): number {
  return Math.ceil(Buffer.byteLength(text, 'utf8') / 3);
}
