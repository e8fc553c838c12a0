/**
 * Gemma 3n behind any OpenAI-compatible chat-completions engine, through the official `openai` SDK.
 * vLLM is the production target (and how to scale past one GPU); SGLang / mistral.rs work with
 * `audioPart: 'audio_url'`, and text/image-only engines (llama.cpp, Ollama) with `audioPart: null`.
 *
 * A request is one user turn: each frame as an `image_url` JPEG data URL, then the audio (16 kHz mono
 * PCM16 WAV, padded to one server-wide length, default 30 s, so concurrent requests never mix clip
 * lengths in one engine batch: vllm#50957) as `input_audio` or an `audio_url` data URL, then the
 * prompt text. Sampling is always sent explicitly, because vLLM otherwise applies the model's
 * generation_config. A request with `responseFormat` (structured output) carries it as OpenAI's
 * `response_format: {type: "json_schema", json_schema: {name, schema, strict}}`, which vLLM enforces
 * with guided decoding; the backend declares this as `capabilities.structuredOutput`.
 *
 * Start-up: `load()` sends a 1-token warm-up request and retries until the engine answers; status()
 * reads 'loading' meanwhile (with the cause, code and failure count), 'error' once the deadline
 * passes, and goes back to 'ready' whenever a later probe or generation succeeds. The cause is logged
 * at the first failure and then at most every `warmup.logEveryMs`. Once the engine answers, its
 * `max_model_len` (GET /v1/models) becomes `capabilities.maxContextTokens`, and requests that would
 * not fit are refused with `context_length_exceeded` before they are sent.
 *
 * Health: `unhealthyAfterTimeouts` requests in a row that time out (a hung engine) turn status() to
 * 'error' (code engine_timeout) and start recovery probing; any success turns it back to 'ready'.
 */
import OpenAI from 'openai';
import type { ChatCompletionContentPart, ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { childLogger, type Logger } from '../log.js';
import {
  estimateTextTokens,
  mediaTokenCosts,
  TURN_MARKUP_TOKENS,
  TOKENS_PER_AUDIO_CLIP,
  TOKENS_PER_IMAGE,
  type BackendCapabilities,
  type BackendStatus,
  type GenerateEvent,
  type GenerateRequest,
  type JsonSchemaFormat,
  type ModelBackend,
  type Usage,
} from './backend.js';
import { DEFAULT_AUDIO_PAD_SAMPLES, encodeWavPcm16 } from './audio.js';
import { DEFAULT_OPENAI_MODEL, DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_WARMUP_DEADLINE_MS } from './defaults.js';
import { ModelAbortError, ModelError } from './errors.js';
import { measureGeneration, type RawEvent } from './measure.js';
import { fitMedia } from './request.js';

export interface OpenAIBackendOptions {
  /** e.g. http://127.0.0.1:8000/v1 */
  baseURL: string;
  apiKey?: string;
  modelId?: string;
  /** Whole-request limit (connect to last streamed byte). Default 60 s. */
  timeoutMs?: number;
  /** Stream deltas (default) or ask for the whole reply at once. */
  stream?: boolean;
  capabilities?: {
    images?: boolean;
    /** Must not exceed the engine's --limit-mm-per-prompt image count. Default 8. */
    maxImages?: number;
    /** 'input_audio' (vLLM), 'audio_url' (SGLang, mistral.rs, vLLM) or null (no audio). */
    audioPart?: 'input_audio' | 'audio_url' | null;
  };
  warmup?: {
    /** Between probes while the engine is not answering. Default 2 s. */
    retryIntervalMs?: number;
    /** After this, status() reads 'error' (probing continues). Default 10 min: vLLM loads slowly. */
    deadlineMs?: number;
    /** One probe's own time limit. Default min(timeoutMs, 30 s). */
    probeTimeoutMs?: number;
    /** A still-failing warm-up is logged at the first failure, then at most this often. Default 30 s. */
    logEveryMs?: number;
  };
  /**
   * Every audio clip is padded with silence to at least this many 16 kHz samples (clamped to 1–30 s).
   * Default 480 000 (30 s): one length for every request keeps pre-#50958 vLLM alive (vllm#50957).
   */
  audioPadSamples?: number;
  /** Timed-out requests in a row after which status() reads 'error' (a hung engine). Default 2. */
  unhealthyAfterTimeouts?: number;
  /** Where this backend logs (default: the 'model' child of the root logger). */
  logger?: Logger;
}

/** Maps anything the SDK throws to a ModelError with a message an operator can act on. */
export function toModelError(err: unknown, ctx: { baseURL: string; modelId: string }): ModelError {
  if (err instanceof ModelError) return err;
  if (err instanceof OpenAI.APIUserAbortError) return new ModelAbortError(err);
  if (err instanceof OpenAI.APIConnectionTimeoutError) {
    return new ModelError('engine_timeout', `engine at ${ctx.baseURL} did not answer in time`, { cause: err });
  }
  if (err instanceof OpenAI.APIConnectionError) {
    const cause = err.cause as { code?: string; cause?: { code?: string } } | undefined;
    const code = cause?.code ?? cause?.cause?.code;
    return new ModelError('engine_unreachable', `cannot reach the engine at ${ctx.baseURL}${code ? ` (${code})` : ''}: is it running?`, { cause: err });
  }
  if (err instanceof OpenAI.APIError && typeof err.status === 'number') {
    const detail = (err.error as { message?: string } | undefined)?.message ?? err.message;
    const status = err.status;
    const o = { cause: err, engineStatus: status };
    if (status === 401 || status === 403) {
      return new ModelError('engine_unauthorized', `engine at ${ctx.baseURL} refused the API key (${status}); set OPENAI_API_KEY`, o);
    }
    if (status === 404) {
      return new ModelError('model_not_found', `engine at ${ctx.baseURL} does not serve model "${ctx.modelId}" (404: ${detail}); check MODEL_ID and that the base URL ends in /v1`, o);
    }
    if ((status === 400 || status === 413 || status === 422) && /maximum context length|max_model_len|context length/i.test(detail)) {
      return new ModelError(
        'context_length_exceeded',
        `engine refused the request as longer than the model's context (${status}: ${detail}); lower max_new_tokens or max_input_tokens, or serve with a larger --max-model-len`,
        o,
      );
    }
    if (status === 400 || status === 413 || status === 422) {
      return new ModelError('engine_bad_request', `engine rejected the request (${status}): ${detail}`, o);
    }
    if (status === 429 || status === 503) return new ModelError('engine_busy', `engine is overloaded or still loading (${status}): ${detail}`, o);
    return new ModelError('engine_error', `engine error (${status}): ${detail}`, o);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ModelError('engine_error', `engine stream failed: ${message}`, { cause: err });
}

/** OpenAI's `response_format` for a JSON Schema, the shape vLLM's guided decoding reads. */
export function responseFormatBody(f: JsonSchemaFormat): { type: 'json_schema'; json_schema: { name: string; schema: Record<string, unknown>; strict?: boolean } } {
  return { type: 'json_schema', json_schema: { name: f.name, schema: f.schema, ...(f.strict !== undefined ? { strict: f.strict } : {}) } };
}

/** Probe failures that mean the engine answered but the configuration is wrong (not "still loading"). */
const CONFIG_ERRORS = new Set(['engine_unauthorized', 'model_not_found', 'engine_bad_request']);

/** Reads `max_model_len` for `modelId` from a GET /v1/models answer (vLLM puts it on each model entry). */
export function maxModelLenFrom(models: ReadonlyArray<unknown>, modelId: string): number | undefined {
  for (const m of models) {
    const e = m as { id?: unknown; max_model_len?: unknown };
    if (e.id === modelId && typeof e.max_model_len === 'number' && Number.isInteger(e.max_model_len) && e.max_model_len > 0) {
      return e.max_model_len;
    }
  }
  return undefined;
}

export class OpenAIBackend implements ModelBackend {
  readonly kind = 'openai' as const;
  readonly modelId: string;
  readonly baseURL: string;
  private caps: BackendCapabilities;
  private readonly audioPadSamples: number;
  private readonly unhealthyAfterTimeouts: number;
  private consecutiveTimeouts = 0;
  private readonly client: OpenAI;
  private readonly timeoutMs: number;
  private readonly stream: boolean;
  private readonly warm: Required<NonNullable<OpenAIBackendOptions['warmup']>>;
  private readonly log: Logger;
  private state: BackendStatus = { state: 'loading', message: 'waiting for the engine to answer', since: Date.now() };
  private probing: Promise<void> | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private wakeProbe: (() => void) | undefined;
  /**
   * One controller per probe: the SDK adds an abort listener to the signal it is given and never
   * removes it, so a shared signal collected one listener per probe (MaxListenersExceededWarning after
   * ~11 probes, about 30 s of warm-up).
   */
  private probeAbort: AbortController | undefined;
  private probeFailures = 0;
  private lastProbeLogAt = -Infinity;
  private closed = false;

  constructor(opts: OpenAIBackendOptions) {
    this.baseURL = opts.baseURL.replace(/\/+$/, '');
    this.modelId = opts.modelId ?? DEFAULT_OPENAI_MODEL;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.stream = opts.stream ?? true;
    const c = opts.capabilities ?? {};
    this.audioPadSamples = opts.audioPadSamples ?? DEFAULT_AUDIO_PAD_SAMPLES;
    this.unhealthyAfterTimeouts = Math.max(1, opts.unhealthyAfterTimeouts ?? 2);
    this.caps = {
      images: c.images ?? true,
      imageEncoding: 'jpeg',
      maxImages: c.maxImages ?? 8,
      audio: c.audioPart === undefined ? 'input_audio' : c.audioPart,
      tokensPerImage: TOKENS_PER_IMAGE,
      tokensPerAudioClip: TOKENS_PER_AUDIO_CLIP,
      structuredOutput: 'json_schema',
    };
    this.warm = {
      retryIntervalMs: opts.warmup?.retryIntervalMs ?? 2000,
      deadlineMs: opts.warmup?.deadlineMs ?? DEFAULT_WARMUP_DEADLINE_MS,
      probeTimeoutMs: opts.warmup?.probeTimeoutMs ?? Math.min(this.timeoutMs, 30_000),
      logEveryMs: opts.warmup?.logEveryMs ?? 30_000,
    };
    // Retries are the generation loop's decision (its next cycle), not the SDK's hidden backoff.
    this.client = new OpenAI({ baseURL: this.baseURL, apiKey: opts.apiKey || 'EMPTY', timeout: this.timeoutMs, maxRetries: 0 });
    this.log = (opts.logger ?? childLogger('model')).child({ backend: 'openai', model: this.modelId, base_url: this.baseURL });
  }

  get capabilities(): BackendCapabilities {
    return this.caps;
  }

  status(): BackendStatus {
    return { ...this.state };
  }

  private setState(next: BackendStatus): void {
    const keepSince = next.state === this.state.state && this.state.since !== undefined;
    this.state = { ...next, since: keepSince ? this.state.since! : Date.now() };
  }

  countTextTokens(text: string): number {
    return estimateTextTokens(text);
  }

  /**
   * Resolves once the engine answers a warm-up request. Rejects with the ModelError when the deadline
   * passes or the engine refuses the configuration (bad key, unknown model); probing then carries on
   * in the background and status() returns to 'ready' as soon as the engine answers.
   */
  load(): Promise<void> {
    if (this.closed) return Promise.reject(new ModelError('backend_closed', 'backend is closed'));
    if (this.state.state === 'ready') return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const started = Date.now();
      let settled = false;
      const settle = (err?: ModelError) => {
        if (settled) return;
        settled = true;
        if (err) reject(err);
        else resolve();
      };
      this.startProbing((outcome) => {
        if (outcome === 'ready') {
          settle();
          return false;
        }
        if (CONFIG_ERRORS.has(outcome.code) || Date.now() - started >= this.warm.deadlineMs) {
          const permanent = CONFIG_ERRORS.has(outcome.code);
          this.setState({ state: 'error', message: outcome.message, code: outcome.code, permanent, consecutiveFailures: this.probeFailures });
          this.log.error(
            { code: outcome.code, err: outcome.message, attempts: this.probeFailures, waited_ms: Date.now() - started },
            permanent ? 'engine refused the configuration; fix it and restart' : 'engine did not come up before the warm-up deadline; still probing',
          );
          settle(outcome);
          return false;
        }
        return true;
      });
    });
  }

  /**
   * The warm-up/recovery loop; one at a time. Each observer sees every probe outcome until it returns
   * false. While a load() caller waits, the retry timer keeps the process alive; background recovery
   * probing does not.
   */
  private startProbing(observe?: (o: 'ready' | ModelError) => boolean): void {
    if (observe) this.probeObservers.push(observe);
    if (this.probing) return;
    this.probing = (async () => {
      while (!this.closed) {
        const outcome = await this.probe();
        this.probeObservers = this.probeObservers.filter((o) => o(outcome));
        if (outcome === 'ready') break;
        this.logProbeFailure(outcome);
        await new Promise<void>((wake) => {
          this.wakeProbe = wake;
          this.probeTimer = setTimeout(wake, this.warm.retryIntervalMs);
          if (this.probeObservers.length === 0) this.probeTimer.unref();
        });
      }
      this.probeObservers = [];
      this.probing = undefined;
    })();
  }

  private probeObservers: Array<(o: 'ready' | ModelError) => boolean> = [];

  /** The first failure at once, then at most every logEveryMs: an unreachable engine is never silent. */
  private logProbeFailure(e: ModelError): void {
    const now = Date.now();
    const fields = { code: e.code, err: e.message, attempts: this.probeFailures };
    if (this.probeFailures === 1 || now - this.lastProbeLogAt >= this.warm.logEveryMs) {
      this.lastProbeLogAt = now;
      this.log.warn(fields, 'engine not answering yet; still waiting');
    } else {
      this.log.debug(fields, 'engine not ready yet');
    }
  }

  private async probe(): Promise<'ready' | ModelError> {
    const ctl = new AbortController();
    this.probeAbort = ctl;
    try {
      await this.client.chat.completions.create(
        { model: this.modelId, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 1, temperature: 0, stream: false },
        { timeout: this.warm.probeTimeoutMs, signal: ctl.signal },
      );
      await this.readContextLength(ctl.signal);
      if (this.state.state !== 'ready') {
        this.log.info({ after_failures: this.probeFailures, max_model_len: this.caps.maxContextTokens }, 'engine answered; backend ready');
      }
      this.probeFailures = 0;
      this.markReady();
      return 'ready';
    } catch (err) {
      const e = toModelError(err, this);
      this.probeFailures++;
      const fields = { message: e.message, code: e.code, consecutiveFailures: this.probeFailures };
      if (this.state.state === 'ready' || CONFIG_ERRORS.has(e.code)) {
        this.setState({ state: 'error', ...fields, permanent: CONFIG_ERRORS.has(e.code) });
      } else if (this.state.state === 'loading') {
        this.setState({ state: 'loading', ...fields, message: `waiting for the engine: ${e.message}`, permanent: false });
      } else {
        this.setState({ ...this.state, consecutiveFailures: this.probeFailures });
      }
      return e;
    } finally {
      if (this.probeAbort === ctl) this.probeAbort = undefined;
    }
  }

  /** vLLM reports `max_model_len` per model on GET /v1/models; engines that do not leave it unknown. */
  private async readContextLength(signal: AbortSignal): Promise<void> {
    try {
      const page = await this.client.models.list({ timeout: this.warm.probeTimeoutMs, signal });
      const len = maxModelLenFrom(page.data, this.modelId);
      if (len !== undefined && len !== this.caps.maxContextTokens) {
        this.caps = { ...this.caps, maxContextTokens: len };
        this.log.info({ max_model_len: len }, 'engine context length');
      }
    } catch (err) {
      if (signal.aborted) throw err;
      this.log.debug({ err: toModelError(err, this).message }, 'engine does not list models; context length unknown');
    }
  }

  private markReady(): void {
    this.consecutiveTimeouts = 0;
    if (this.state.state !== 'ready') this.setState({ state: 'ready' });
  }

  /**
   * Estimated prompt tokens (over-counting on purpose) and the gate against the engine's context
   * length: a refusal that names the numbers and what to lower beats the engine's generic 400.
   */
  private checkContextLength(req: GenerateRequest, images: number, audio: boolean): void {
    const max = this.caps.maxContextTokens;
    if (max === undefined) return;
    const costs = mediaTokenCosts(this.caps);
    let text = estimateTextTokens(req.prompt) + (req.system ? estimateTextTokens(req.system) : 0);
    for (const t of req.history ?? []) text += estimateTextTokens(t.text) + 5; // <start_of_turn>role\n … <end_of_turn>\n
    const mediaTokens = images * costs.image + (audio ? costs.audioClip : 0);
    const input = TURN_MARKUP_TOKENS + text + mediaTokens;
    if (input + req.maxNewTokens <= max) return;
    throw new ModelError(
      'context_length_exceeded',
      `request needs about ${input} input tokens (${images} image(s) and ${audio ? 1 : 0} audio clip(s): ${mediaTokens}, text and context: ${TURN_MARKUP_TOKENS + text}) ` +
        `+ max_new_tokens ${req.maxNewTokens} = ${input + req.maxNewTokens}, over the engine's max_model_len ${max}; ` +
        `lower max_new_tokens or max_input_tokens (or send fewer frames), or serve the engine with a larger --max-model-len`,
    );
  }

  private buildMessages(req: GenerateRequest): { messages: ChatCompletionMessageParam[]; droppedImages: number; droppedAudio: boolean } {
    const media = fitMedia(req, this.caps, { audioPadSamples: this.audioPadSamples });
    this.checkContextLength(req, media.images.length, media.audio !== undefined);
    const content: ChatCompletionContentPart[] = [];
    for (const im of media.images) {
      if (!im.jpeg) throw new ModelError('invalid_request', 'the OpenAI-compatible backend needs JPEG frames (wantJpeg)');
      content.push({ type: 'image_url', image_url: { url: `data:image/jpeg;base64,${im.jpeg.toString('base64')}` } });
    }
    if (media.audio) {
      const b64 = encodeWavPcm16(media.audio.samples).toString('base64');
      if (this.capabilities.audio === 'audio_url') {
        // Not in the SDK's part union, but the wire format SGLang, mistral.rs and vLLM accept.
        content.push({ type: 'audio_url', audio_url: { url: `data:audio/wav;base64,${b64}` } } as unknown as ChatCompletionContentPart);
      } else {
        content.push({ type: 'input_audio', input_audio: { data: b64, format: 'wav' } });
      }
    }
    content.push({ type: 'text', text: req.prompt });
    const messages: ChatCompletionMessageParam[] = [];
    if (req.system) messages.push({ role: 'system', content: req.system });
    for (const t of req.history ?? []) messages.push({ role: t.role, content: t.text });
    messages.push({ role: 'user', content });
    return { messages, droppedImages: media.droppedImages, droppedAudio: media.droppedAudio };
  }

  /** Timings, abort and the one `done` come from measure.ts; what the engine said comes from exchange(). */
  generate(req: GenerateRequest): AsyncGenerator<GenerateEvent> {
    return measureGeneration(this.exchange(req), { signal: req.signal });
  }

  /** One request to the engine as raw events; maps every failure to the ModelError that says why. */
  private async *exchange(req: GenerateRequest): AsyncGenerator<RawEvent> {
    const signal = req.signal;
    const t0 = performance.now();
    const { messages, droppedImages, droppedAudio } = this.buildMessages(req);
    if (droppedImages > 0 || droppedAudio) this.log.warn({ dropped_images: droppedImages, dropped_audio: droppedAudio }, 'request thinned to the engine capabilities');
    const encodeMs = performance.now() - t0;

    // One controller for the caller's abort and our whole-request deadline (the SDK's own timeout
    // does not cover a stream that stalls after its headers).
    const ctl = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ctl.abort();
    }, this.timeoutMs);
    const onAbort = () => ctl.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const timeoutError = (cause?: unknown) =>
      new ModelError('engine_timeout', `engine at ${this.baseURL} did not finish within ${this.timeoutMs} ms`, { cause });
    const fail = (err: unknown, midStream = false): ModelError => {
      // Our own abort breaks the socket: not a timeout, not an unreachable engine.
      if (signal?.aborted) return new ModelAbortError(signal.reason);
      if (timedOut) return this.noteTimeout(timeoutError(err));
      if (midStream && err instanceof OpenAI.APIConnectionError) {
        // The engine answered, then the connection broke: an engine failure, not an unreachable engine.
        return new ModelError('engine_error', `engine closed the stream mid-reply: ${err.message}`, { cause: err });
      }
      const e = toModelError(err, this);
      if (e.code === 'engine_timeout') return this.noteTimeout(e);
      if (e.code === 'engine_unreachable') {
        // logged on the transition only: the loop retries every cycle and the probe loop logs rate-limited
        if (this.state.code !== 'engine_unreachable') this.log.warn({ code: e.code, err: e.message }, 'engine unreachable; probing until it answers');
        this.setState({ state: 'error', message: e.message, code: e.code, permanent: false, consecutiveFailures: (this.state.consecutiveFailures ?? 0) + 1 });
        this.startProbing();
      }
      return e;
    };

    const s = req.sampling ?? {};
    const body = {
      model: this.modelId,
      messages,
      max_tokens: req.maxNewTokens,
      temperature: s.temperature ?? 0,
      top_p: s.topP ?? 1,
      ...(s.topK !== undefined ? { top_k: s.topK } : {}), // vLLM/SGLang extension
      ...(req.responseFormat ? { response_format: responseFormatBody(req.responseFormat) } : {}),
    };
    let usage: Usage = {};
    let finishReason: string | undefined;
    try {
      yield { type: 'sent', encodeMs };
      if (this.stream) {
        const stream = await this.client.chat.completions
          .create({ ...body, stream: true, stream_options: { include_usage: true } }, { signal: ctl.signal })
          .catch((err: unknown) => {
            throw fail(err);
          });
        try {
          for await (const chunk of stream) {
            if (chunk.usage) usage = { promptTokens: chunk.usage.prompt_tokens, completionTokens: chunk.usage.completion_tokens };
            const choice = chunk.choices[0];
            if (choice?.finish_reason) finishReason = choice.finish_reason;
            const delta = choice?.delta?.content;
            if (delta) yield { type: 'delta', text: delta };
          }
        } catch (err) {
          throw fail(err, true);
        }
        // Aborting the fetch ends the SDK's stream quietly, so a deadline or abort shows up here.
        if (signal?.aborted) throw new ModelAbortError(signal.reason);
        if (timedOut) throw this.noteTimeout(timeoutError());
        if (!finishReason) throw new ModelError('engine_error', 'engine stream ended before the reply finished (no finish_reason)');
      } else {
        const res = await this.client.chat.completions.create({ ...body, stream: false }, { signal: ctl.signal }).catch((err: unknown) => {
          throw fail(err);
        });
        const choice = res.choices[0];
        finishReason = choice?.finish_reason ?? undefined;
        if (res.usage) usage = { promptTokens: res.usage.prompt_tokens, completionTokens: res.usage.completion_tokens };
        const text = choice?.message?.content ?? '';
        if (text) yield { type: 'delta', text };
      }
      if (this.state.state !== 'ready') this.log.info('engine answered again; backend ready');
      this.markReady();
      yield { type: 'end', usage, ...(finishReason ? { finishReason } : {}) };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      ctl.abort(); // closes the HTTP stream if the consumer stopped early
    }
  }

  /** Counts a timed-out request; enough in a row mean a hung engine, which /health must show. */
  private noteTimeout(e: ModelError): ModelError {
    this.consecutiveTimeouts++;
    if (this.consecutiveTimeouts >= this.unhealthyAfterTimeouts && this.state.state !== 'error') {
      this.setState({
        state: 'error',
        code: 'engine_timeout',
        permanent: false,
        consecutiveFailures: this.consecutiveTimeouts,
        message: `engine at ${this.baseURL} timed out on ${this.consecutiveTimeouts} requests in a row (no reply within ${this.timeoutMs} ms): it may be hung`,
      });
      this.log.error({ code: e.code, timeouts: this.consecutiveTimeouts }, 'engine keeps timing out; marked unhealthy until a request or probe succeeds');
      this.startProbing();
    } else if (this.state.state === 'error' && this.state.code === 'engine_timeout') {
      this.setState({ ...this.state, consecutiveFailures: this.consecutiveTimeouts });
    }
    return e;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.wakeProbe?.();
    this.probeAbort?.abort();
    await this.probing?.catch(() => undefined);
  }
}
