/**
 * The error-code registry: every stable `code` the runner emits, in one table. Codes are public API —
 * they appear as `error.code` in data-channel error records, in `error` events, in HTTP error bodies
 * (`code`) and `/stream/status` (`last_stream_error`), and in logs — so this is the list operators and
 * clients can rely on. docs/error-codes.md is generated from it (`npm run docs`; a test fails when stale).
 *
 * Promises:
 * - `ErrorCode` is derived from this table, and `AppError` (src/errors.ts) takes an `ErrorCode`, so an
 *   unregistered code is a compile error wherever an error, record or event is built;
 * - a code is never renamed or reused for another meaning; a removed code stays listed until a major
 *   release;
 * - `retryable` says whether the same thing may succeed later without anyone changing anything (the
 *   runner retries those itself where it can); `action` says what an operator should do;
 * - `http` is the status a code answers with where it reaches the control API: src/server/http-status.ts
 *   maps every error to it there (no error picks its own status; a code without one answers 500).
 * This module imports nothing, so every layer may use it.
 */

/** Where a code can be seen. */
export type ErrorSurface = 'record' | 'event' | 'http' | 'status' | 'log' | 'cli';

export type ErrorLayer = 'model' | 'trickle' | 'media' | 'pipeline' | 'server' | 'config' | 'cli';

export interface ErrorCodeInfo {
  layer: ErrorLayer;
  where: readonly ErrorSurface[];
  retryable: boolean;
  /** HTTP status where the code reaches the control API. */
  http?: number;
  /** What happened, in one line. */
  meaning: string;
  /** What the operator should do. */
  action: string;
}

const REC_EVENT = ['record', 'event', 'status', 'log'] as const;
const EVENT_LOG = ['event', 'status', 'log'] as const;

export const ERROR_CODES = {
  // ---- model backends (src/model/errors.ts) — in cycle error records, error events and /health
  engine_unreachable: {
    layer: 'model', where: REC_EVENT, retryable: true, http: 503,
    meaning: 'the OpenAI-compatible engine could not be reached (refused, DNS, reset)',
    action: 'start the engine or fix OPENAI_BASE_URL; the runner probes until it answers',
  },
  engine_unauthorized: {
    layer: 'model', where: REC_EVENT, retryable: false, http: 502,
    meaning: 'the engine refused the API key (401/403)', action: 'set OPENAI_API_KEY to a key the engine accepts',
  },
  model_not_found: {
    layer: 'model', where: REC_EVENT, retryable: false, http: 502,
    meaning: 'the engine does not serve MODEL_ID (404)', action: 'check MODEL_ID and that the base URL ends in /v1',
  },
  engine_bad_request: {
    layer: 'model', where: REC_EVENT, retryable: false, http: 502,
    meaning: 'the engine rejected the request (400/422)',
    action: 'match the engine limits: MODEL_MAX_IMAGES to --limit-mm-per-prompt, MODEL_AUDIO_PART to what it accepts',
  },
  context_length_exceeded: {
    layer: 'model', where: REC_EVENT, retryable: false, http: 400,
    meaning: 'the request does not fit the engine\'s context window',
    action: 'lower max_input_tokens, max_new_tokens or max_frames, or raise the engine\'s max-model-len',
  },
  engine_timeout: {
    layer: 'model', where: REC_EVENT, retryable: true, http: 504,
    meaning: 'the engine did not finish within REQUEST_TIMEOUT_MS; two in a row turn /health to ERROR',
    action: 'check engine load; raise REQUEST_TIMEOUT_MS or generate_every_s, or lower max_new_tokens',
  },
  engine_error: {
    layer: 'model', where: REC_EVENT, retryable: true, http: 502,
    meaning: 'the engine (or the in-process model) failed while answering', action: 'read the engine\'s log; the next cycle tries again',
  },
  engine_busy: {
    layer: 'model', where: REC_EVENT, retryable: true, http: 503,
    meaning: 'the engine is overloaded or still loading (429/503), or the in-process queue is full',
    action: 'wait, or give the engine more capacity; raise generate_every_s',
  },
  invalid_request: {
    layer: 'model', where: REC_EVENT, retryable: false, http: 400,
    meaning: 'the runner built a request this backend cannot take', action: 'report a bug (with the log line)',
  },
  aborted: {
    layer: 'model', where: ['log'], retryable: false, http: 499,
    meaning: 'a generation was aborted by its caller (records say cycle_aborted)', action: 'none',
  },
  model_load_failed: {
    layer: 'model', where: ['record', 'event', 'status', 'log', 'cli'], retryable: false, http: 503,
    meaning: 'the in-process model could not be loaded (files, dtype, device, memory)',
    action: 'fix MODEL_DIR / MODEL_ID / MODEL_DTYPE / MODEL_DEVICE and restart the runner',
  },
  backend_closed: {
    layer: 'model', where: ['record', 'log'], retryable: false, http: 503,
    meaning: 'the backend was closed (the runner is shutting down)', action: 'none',
  },

  // ---- trickle clients (src/trickle/errors.ts) — in error events when a channel fails
  trickle_not_found: {
    layer: 'trickle', where: EVENT_LOG, retryable: true,
    meaning: 'the trickle channel does not exist (404); it may appear later', action: 'check the channel URLs the start request named',
  },
  trickle_channel_closed: {
    layer: 'trickle', where: EVENT_LOG, retryable: false,
    meaning: 'the trickle server closed the channel (Lp-Trickle-Closed)', action: 'none: the gateway ended the stream',
  },
  trickle_retries_exhausted: {
    layer: 'trickle', where: EVENT_LOG, retryable: true,
    meaning: 'bounded retries against a trickle channel were used up', action: 'check the network path to the trickle server',
  },
  trickle_http_error: {
    layer: 'trickle', where: EVENT_LOG, retryable: true,
    meaning: 'the trickle server answered an unexpected HTTP status', action: 'read the status and body in the message',
  },
  trickle_connection: {
    layer: 'trickle', where: EVENT_LOG, retryable: true,
    meaning: 'transport failure talking to the trickle server (refused, reset, TLS, cut short)', action: 'check the network path to the trickle server',
  },
  trickle_closed: {
    layer: 'trickle', where: ['log'], retryable: false, meaning: 'a trickle client was used after it was closed', action: 'none (shutdown)',
  },
  trickle_aborted: {
    layer: 'trickle', where: ['log'], retryable: false, meaning: 'a trickle segment was abandoned by its writer', action: 'none',
  },
  trickle_bad_url: {
    layer: 'trickle', where: EVENT_LOG, retryable: false,
    meaning: 'a channel URL the trickle clients refuse: not http/https, or with a query, fragment or credentials', action: 'fix the channel URL',
  },
  trickle_not_a_server: {
    layer: 'trickle', where: EVENT_LOG, retryable: false,
    meaning: 'the channel URL answered 200 without trickle headers: a plain HTTP server', action: 'fix the channel URL',
  },

  // ---- media (src/media/errors.ts) — error events and logs; the stream goes on
  decode_error: {
    layer: 'media', where: EVENT_LOG, retryable: true,
    meaning: 'ffmpeg reported corrupt or undecodable input; the decoder resyncs at the next keyframe', action: 'check the source encoder if it persists',
  },
  decoder_exited: {
    layer: 'media', where: EVENT_LOG, retryable: true,
    meaning: 'the ffmpeg decoder ended unexpectedly; a new one starts at the next segment', action: 'read the ffmpeg message if it repeats',
  },
  decoder_restart: {
    layer: 'media', where: EVENT_LOG, retryable: true,
    meaning: 'a new decoder was started (the stream layout or the sampler settings changed)', action: 'none (informational)',
  },
  segment_dropped: {
    layer: 'media', where: EVENT_LOG, retryable: true,
    meaning: 'a whole input segment was skipped: the decoder is too far behind', action: 'give the runner more CPU, or lower target_fps / downscale_px',
  },
  segment_truncated: {
    layer: 'media', where: EVENT_LOG, retryable: true,
    meaning: 'the rest of an oversized input segment was skipped', action: 'lower the input bitrate or segment length',
  },
  frame_dropped: {
    layer: 'media', where: EVENT_LOG, retryable: true,
    meaning: 'sampled frames were dropped because JPEG encoding fell behind or failed', action: 'lower target_fps or jpeg_quality, or give the runner more CPU',
  },
  unrecognised_input: {
    layer: 'media', where: EVENT_LOG, retryable: true,
    meaning: 'an input segment has no MPEG-TS program tables and there is no decoder to resync into', action: 'send MPEG-TS on the subscribe channel',
  },
  ffmpeg_unavailable: {
    layer: 'media', where: ['event', 'log', 'cli'], retryable: false, meaning: 'ffmpeg cannot be run', action: 'install ffmpeg (or put it on PATH)',
  },
  ffmpeg_failed: {
    layer: 'media', where: ['log', 'cli'], retryable: false, meaning: 'an ffmpeg tool run failed', action: 'read the ffmpeg message',
  },
  output_lagging: {
    layer: 'media', where: EVENT_LOG, retryable: true,
    meaning: 'passthrough output segments were dropped because the output channel is slower than the input', action: 'check the publish channel\'s network path',
  },
  output_failed: {
    layer: 'media', where: EVENT_LOG, retryable: true, meaning: 'a passthrough output segment failed to publish', action: 'check the publish channel',
  },
  input_segment_cut: {
    layer: 'media', where: EVENT_LOG, retryable: true,
    meaning: 'an input segment ended early (the subscribe connection broke mid-segment); its tail is not decoded', action: 'check the subscribe channel\'s network path if it repeats',
  },
  input_failed: {
    layer: 'media', where: EVENT_LOG, retryable: false, meaning: 'the input (subscribe) channel failed for good', action: 'check the subscribe URL and the trickle server',
  },
  sampler_failed: {
    layer: 'media', where: EVENT_LOG, retryable: true, meaning: 'the frame/audio sampler threw on an input segment', action: 'report a bug (with the log line)',
  },
  jpeg_unavailable: {
    layer: 'media', where: REC_EVENT, retryable: false,
    meaning: 'sharp (JPEG encoding) could not be loaded', action: 'reinstall with optional dependencies (`npm ci`), on a platform sharp supports',
  },
  invalid_settings: {
    layer: 'media', where: ['log'], retryable: false,
    meaning: 'the sampler was given settings outside its rules (the params schema normally prevents this)', action: 'report a bug',
  },

  // ---- pipeline (src/pipeline/*) — records and events of a running stream
  input_over_budget: {
    layer: 'pipeline', where: REC_EVENT, retryable: false,
    meaning: 'even with every frame dropped, the prompt, audio and history exceed max_input_tokens',
    action: 'raise max_input_tokens, or shorten the prompt, audio_window_s or context_history',
  },
  cycle_aborted: {
    layer: 'pipeline', where: ['record', 'log'], retryable: false, meaning: 'the stream stopped while a cycle was running', action: 'none',
  },
  data_publish_failed: {
    layer: 'pipeline', where: EVENT_LOG, retryable: true,
    meaning: 'records could not be published on the data channel; they are queued (bounded) and resent',
    action: 'check the data channel; records are dropped (and counted) only past the queue bound',
  },
  invalid_control_message: {
    layer: 'pipeline', where: EVENT_LOG, retryable: false, meaning: 'a control-channel message is not a JSON object', action: 'fix the sender',
  },
  control_message_too_large: {
    layer: 'pipeline', where: EVENT_LOG, retryable: false, meaning: 'a control-channel message is over the size limit', action: 'send smaller updates',
  },
  stream_stopped: {
    layer: 'pipeline', where: ['log'], retryable: false, meaning: 'work was aborted because the stream stopped', action: 'none',
  },

  // ---- richer outputs (issue 15): structured output (src/pipeline/structured.ts) — cycle error records
  output_not_json: {
    layer: 'pipeline', where: REC_EVENT, retryable: true,
    meaning: 'with output_schema set, the model\'s answer is not one JSON value (the record carries the raw `text`)',
    action: 'use an engine with guided decoding (vLLM); if finish_reason is "length", raise max_new_tokens',
  },
  output_schema_mismatch: {
    layer: 'pipeline', where: REC_EVENT, retryable: true,
    meaning: 'with output_schema set, the answer is JSON but breaks the schema (the message names the first violation; the record carries the raw `text`)',
    action: 'use an engine with guided decoding (vLLM), or loosen the schema',
  },

  // ---- control API (src/server/*) — HTTP error bodies
  bad_request: { layer: 'server', where: ['http'], retryable: false, http: 400, meaning: 'the request cannot be accepted', action: 'fix the request (the message says how)' },
  invalid_json: { layer: 'server', where: ['http'], retryable: false, http: 400, meaning: 'the body is empty, not JSON, or not a JSON object', action: 'send a JSON object' },
  unsupported_content_type: {
    layer: 'server', where: ['http'], retryable: false, http: 400, meaning: 'the body is not application/json', action: 'send Content-Type: application/json',
  },
  invalid_stream_id: {
    layer: 'server', where: ['http'], retryable: false, http: 400, meaning: 'X-Stream-Id is not 1–128 printable characters without spaces', action: 'fix the header',
  },
  invalid_params: {
    layer: 'server', where: ['http', 'event', 'log'], retryable: false, http: 400,
    meaning: 'stream parameters failed validation (HTTP or control channel); the message names each field', action: 'fix the named fields',
  },
  channel_host_not_allowed: {
    layer: 'server', where: ['http'], retryable: false, http: 400,
    meaning: 'a channel URL names a host outside TRICKLE_ALLOWED_HOSTS, or a link-local / metadata address', action: 'use an allowed host, or add it to TRICKLE_ALLOWED_HOSTS',
  },
  channel_host_unresolvable: {
    layer: 'server', where: ['http'], retryable: true, http: 400, meaning: 'a channel URL\'s host does not resolve (DNS)', action: 'check the host name and DNS',
  },
  stream_start_failed: {
    layer: 'server', where: ['http'], retryable: false, http: 400, meaning: 'the stream could not be started', action: 'read the message',
  },
  pipeline_unavailable: {
    layer: 'server', where: ['http'], retryable: true, http: 503,
    meaning: 'the backend is not ready within START_WAIT_MS (or the slot is taken)', action: 'retry; check /health for the backend\'s reason',
  },
  no_active_stream: { layer: 'server', where: ['http'], retryable: false, http: 400, meaning: 'params or stop with no stream running', action: 'start a stream first' },
  stream_not_found: {
    layer: 'server', where: ['http'], retryable: false, http: 404, meaning: 'X-Stream-Id names a stream that is not running', action: 'none: nothing was changed',
  },
  capability_registration_failed: {
    layer: 'server', where: ['log'], retryable: true,
    meaning: 'BYOC registration with the orchestrator failed (the log has its answer)', action: 'check ORCH_URL, ORCH_SECRET and CAPABILITY_URL; the runner keeps retrying',
  },
  viewer_not_built: {
    layer: 'server', where: ['http', 'cli'], retryable: false, http: 500, meaning: 'the live viewer page was not built', action: 'run `npm run build`',
  },

  // ---- many streams per process (issue 13): the stream registry
  stream_already_running: {
    layer: 'server', where: ['http'], retryable: false, http: 409,
    meaning: 'a start names a stream id (X-Stream-Id, else gateway_request_id) that is already running or starting', action: 'stop it first, or start under another id',
  },
  stream_id_required: {
    layer: 'server', where: ['http'], retryable: false, http: 400,
    meaning: 'params or stop without X-Stream-Id while several streams run', action: 'send X-Stream-Id, or use /streams/{id}/params|stop',
  },

  // ---- configuration and CLI
  invalid_config: {
    layer: 'config', where: ['cli', 'log'], retryable: false,
    meaning: 'flags or environment variables failed validation at start; the message lists every problem', action: 'fix the named flags/variables (README "Configuration")',
  },
  watch_bad_options: { layer: 'cli', where: ['cli'], retryable: false, meaning: '`watch` was given conflicting or missing options', action: 'see `gemma3n-trickle watch --help`' },

  // ---- anything else
  system_error: {
    layer: 'pipeline', where: ['record', 'event', 'status', 'log', 'http'], retryable: true,
    meaning: 'an operating-system call failed (the errno, e.g. ECONNRESET, is in the message)', action: 'read the message; report it if it repeats',
  },
  internal: {
    layer: 'pipeline', where: ['record', 'event', 'status', 'log', 'http'], retryable: false, http: 500,
    meaning: 'an unexpected failure inside the runner', action: 'report a bug (with the log line)',
  },
} as const satisfies Record<string, ErrorCodeInfo>;

/** Every registered code. */
export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(v: unknown): v is ErrorCode {
  return typeof v === 'string' && Object.hasOwn(ERROR_CODES, v);
}
