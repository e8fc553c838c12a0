/**
 * In-process Gemma 3n on Transformers.js + ONNX Runtime (CPU by default): the embedded backend used
 * when no engine URL is configured. The model lives in a worker thread (transformers-worker.ts), so the
 * event loop only shuttles small messages; see that file for what runs where. One generation runs at a
 * time per instance (one model, one ORT session set); later requests wait in a bounded FIFO.
 *
 * On first use with a hub id the files are downloaded into the Transformers.js cache with progress
 * reported through `onProgress` (logged by default). A local directory (e.g. the random-weight test
 * model from `make-tiny-model`) is read offline.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { childLogger } from '../log.js';
import {
  estimateTextTokens,
  TOKENS_PER_AUDIO_CLIP,
  TOKENS_PER_IMAGE,
  type BackendCapabilities,
  type BackendStatus,
  type GenerateEvent,
  type GenerateRequest,
  type ModelBackend,
} from './backend.js';
import { EventChannel } from './channel.js';
import { ModelAbortError, ModelError } from './errors.js';
import { fitMedia } from './request.js';
import type { DtypeOption, FromWorker, ProgressEvent, ToWorker, WireGenerate } from './transformers-protocol.js';

export type { DtypeOption, ProgressEvent } from './transformers-protocol.js';

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

export interface TransformersBackendOptions {
  /** Hub id or local directory (absolute or relative to the cwd). Default: DEFAULT_TRANSFORMERS_MODEL. */
  model?: string;
  dtype?: DtypeOption;
  /** 'cpu' (default) or 'cuda' (needs ORT's CUDA provider libraries, which npm installs cannot always fetch). */
  device?: string;
  cacheDir?: string;
  /** Whether a hub id may be downloaded. Default: true for hub ids, false for local directories. */
  allowRemote?: boolean;
  maxImages?: number;
  /** Generations allowed to wait behind the running one before `engine_busy`. Default 8. */
  maxQueued?: number;
  threads?: number;
  onProgress?: (p: ProgressEvent) => void;
}

interface Pending {
  channel: EventChannel<GenerateEvent>;
  sentAt: number;
  maxNewTokens: number;
  firstTokenMs?: number;
}

function looksLocal(model: string): boolean {
  if (isAbsolute(model) || model.startsWith('./') || model.startsWith('../')) return true;
  try {
    return statSync(model).isDirectory();
  } catch {
    return false;
  }
}

/** Reads image/audio token counts from a local processor_config.json; undefined if unreadable. */
function readSeqLengths(dir: string): { image?: number; audio?: number } {
  const file = join(dir, 'processor_config.json');
  if (!existsSync(file)) return {};
  try {
    const cfg = JSON.parse(readFileSync(file, 'utf8')) as { image_seq_length?: unknown; audio_seq_length?: unknown };
    return {
      image: typeof cfg.image_seq_length === 'number' ? cfg.image_seq_length : undefined,
      audio: typeof cfg.audio_seq_length === 'number' ? cfg.audio_seq_length : undefined,
    };
  } catch {
    return {};
  }
}

function spawnWorker(): Worker {
  // Compiled, the worker is a .js file beside this one in dist/. Under tsx (tests, bench) both are .ts,
  // and Node 20 does not carry tsx's loader hooks into worker threads, so the worker registers them.
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./transformers-worker.js', import.meta.url));
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./transformers-worker.ts', import.meta.url).href;
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(boot, { eval: true });
}

function defaultProgressLogger(model: string): (p: ProgressEvent) => void {
  const log = childLogger('model', { backend: 'transformers', model });
  const lastDecile = new Map<string, number>();
  return (p) => {
    if (p.status === 'initiate' && p.file) log.debug({ file: p.file }, 'loading model file');
    if (p.status === 'download' && p.file) log.info({ file: p.file }, 'downloading model file (first run)');
    if (p.status === 'progress' && p.file && typeof p.progress === 'number') {
      const decile = Math.floor(p.progress / 10);
      if (decile > (lastDecile.get(p.file) ?? -1)) {
        lastDecile.set(p.file, decile);
        log.info({ file: p.file, progress_pct: Math.round(p.progress), loaded: p.loaded, total: p.total }, 'model download progress');
      }
    }
  };
}

export class TransformersBackend implements ModelBackend {
  readonly kind = 'transformers' as const;
  readonly modelId: string;
  readonly local: boolean;
  readonly dtype: DtypeOption;
  readonly device: string;
  private caps: BackendCapabilities;
  private readonly opts: TransformersBackendOptions;
  private readonly log;
  private worker: Worker | undefined;
  private loading: Promise<void> | undefined;
  private state: BackendStatus = { state: 'loading', message: 'model not loaded yet' };
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private busy = false;
  private readonly waiting: Array<() => void> = [];
  private closed = false;
  private sessions: string[] = [];

  constructor(opts: TransformersBackendOptions = {}) {
    this.opts = opts;
    const model = opts.model ?? DEFAULT_TRANSFORMERS_MODEL;
    this.local = looksLocal(model);
    // Absolute paths fail Transformers.js's hub-id check, so they are read from disk as-is.
    this.modelId = this.local ? resolve(model) : model;
    this.dtype = opts.dtype ?? DEFAULT_DTYPE;
    this.device = opts.device ?? 'cpu';
    const seq = this.local ? readSeqLengths(this.modelId) : {};
    this.caps = {
      images: true,
      maxImages: opts.maxImages ?? 8,
      audio: 'raw',
      tokensPerImage: seq.image ?? TOKENS_PER_IMAGE,
      tokensPerAudioClip: seq.audio ?? TOKENS_PER_AUDIO_CLIP,
    };
    this.log = childLogger('model', { backend: 'transformers', model: this.modelId });
  }

  get capabilities(): BackendCapabilities {
    return this.caps;
  }

  /** ONNX sessions the loaded model created (empty before load). */
  get loadedSessions(): readonly string[] {
    return this.sessions;
  }

  status(): BackendStatus {
    return { ...this.state };
  }

  countTextTokens(text: string): number {
    // The tokenizer lives in the worker; gating needs a synchronous answer, so this over-estimates.
    return estimateTextTokens(text);
  }

  load(): Promise<void> {
    if (this.closed) return Promise.reject(new ModelError('backend_closed', 'backend is closed'));
    if (!this.loading) {
      this.loading = this.startWorker();
      this.loading.catch(() => undefined); // callers get the rejection; this only marks it handled
    }
    return this.loading;
  }

  private startWorker(): Promise<void> {
    const started = performance.now();
    const onProgress = this.opts.onProgress ?? defaultProgressLogger(this.modelId);
    const worker = spawnWorker();
    this.worker = worker;
    return new Promise<void>((resolveLoad, rejectLoad) => {
      const failLoad = (message: string) => {
        this.state = { state: 'error', message };
        rejectLoad(new ModelError('model_load_failed', message));
      };
      worker.on('message', (msg: FromWorker) => {
        switch (msg.type) {
          case 'progress':
            onProgress(msg.info);
            break;
          case 'loaded':
            this.sessions = msg.sessions;
            this.caps = { ...this.caps, tokensPerImage: msg.imageSeqLength, tokensPerAudioClip: msg.audioSeqLength };
            this.state = { state: 'ready' };
            this.log.info({ load_ms: Math.round(performance.now() - started), sessions: msg.sessions, dtype: this.dtype, device: this.device }, 'in-process model loaded');
            this.setIdle();
            resolveLoad();
            break;
          case 'load_error':
            failLoad(
              `could not load ${this.modelId}: ${msg.message}` +
                (!this.local && /fetch failed|ENOTFOUND|EAI_AGAIN|ECONNREFUSED|network/i.test(msg.message)
                  ? ' (downloading the model needs access to the Hugging Face hub; offline, point --model-dir/MODEL_DIR at a local Gemma 3n ONNX export, or use an engine with OPENAI_BASE_URL)'
                  : ''),
            );
            this.setIdle();
            break;
          default:
            this.onGenerationMessage(msg);
        }
      });
      worker.on('error', (err) => {
        const message = `model worker crashed: ${err.message}`;
        this.log.error({ err }, message);
        failLoad(message);
        this.failAll(new ModelError('engine_error', message, { cause: err }));
      });
      worker.on('exit', (code) => {
        this.worker = undefined;
        if (this.closed) {
          rejectLoad(new ModelError('backend_closed', 'backend closed while loading'));
        } else {
          const message = `model worker exited (code ${code})`;
          failLoad(message);
          this.failAll(new ModelError('engine_error', message));
        }
      });
      this.post({
        type: 'load',
        options: {
          model: this.modelId,
          dtype: this.dtype,
          device: this.device,
          allowRemote: this.opts.allowRemote ?? !this.local,
          ...(this.opts.cacheDir ? { cacheDir: this.opts.cacheDir } : {}),
          ...(this.opts.threads ? { threads: this.opts.threads } : {}),
        },
      });
    });
  }

  private post(msg: ToWorker): void {
    this.worker?.postMessage(msg);
  }

  /** Keeps the process alive only while the worker has work (load or a generation). */
  private setIdle(): void {
    if (this.pending.size === 0 && this.state.state !== 'loading') this.worker?.unref();
  }

  private onGenerationMessage(msg: FromWorker): void {
    if (msg.type !== 'delta' && msg.type !== 'done' && msg.type !== 'error') return;
    const p = this.pending.get(msg.id);
    if (!p) return;
    if (msg.type === 'delta') {
      p.firstTokenMs ??= performance.now() - p.sentAt;
      p.channel.push({ type: 'delta', text: msg.text });
      return;
    }
    this.pending.delete(msg.id);
    if (msg.type === 'done') {
      p.channel.push({
        type: 'done',
        text: msg.text,
        usage: { promptTokens: msg.promptTokens, completionTokens: msg.completionTokens },
        timings: {
          encodeMs: msg.encodeMs,
          ...(p.firstTokenMs !== undefined ? { firstTokenMs: p.firstTokenMs } : {}),
          modelMs: performance.now() - p.sentAt,
        },
        finishReason: msg.aborted ? 'abort' : msg.completionTokens >= p.maxNewTokens ? 'length' : 'stop',
      });
      p.channel.end();
    } else {
      p.channel.fail(new ModelError('engine_error', `in-process generation failed: ${msg.message}`));
    }
    this.release();
  }

  private failAll(err: ModelError): void {
    for (const p of this.pending.values()) p.channel.fail(err);
    this.pending.clear();
    this.busy = false;
    for (const w of this.waiting.splice(0)) w();
  }

  private acquire(signal: AbortSignal | undefined): Promise<void> {
    if (!this.busy) {
      this.busy = true;
      return Promise.resolve();
    }
    if (this.waiting.length >= (this.opts.maxQueued ?? 8)) {
      return Promise.reject(new ModelError('engine_busy', 'in-process model is busy: too many generations queued'));
    }
    return new Promise<void>((resolveSlot, rejectSlot) => {
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        this.busy = true;
        resolveSlot();
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(grant);
        if (i >= 0) this.waiting.splice(i, 1);
        rejectSlot(new ModelAbortError(signal?.reason));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(grant);
    });
  }

  private release(): void {
    this.busy = false;
    const next = this.waiting.shift();
    if (next) next();
    else this.setIdle();
  }

  async *generate(req: GenerateRequest): AsyncGenerator<GenerateEvent> {
    const signal = req.signal;
    if (signal?.aborted) throw new ModelAbortError(signal.reason);
    await this.load();
    await this.acquire(signal);
    if (signal?.aborted) {
      this.release();
      throw new ModelAbortError(signal.reason);
    }
    const media = fitMedia(req, this.caps);
    if (media.droppedImages > 0) this.log.warn({ dropped: media.droppedImages }, 'more images than maxImages; thinned evenly');
    const id = ++this.nextId;
    const channel = new EventChannel<GenerateEvent>();
    this.pending.set(id, { channel, sentAt: performance.now(), maxNewTokens: req.maxNewTokens });
    const wire: WireGenerate = {
      id,
      ...(req.system ? { system: req.system } : {}),
      history: req.history ?? [],
      prompt: req.prompt,
      images: media.images.map((im) => ({
        width: im.width,
        height: im.height,
        ...(im.rgb ? { rgb: im.rgb } : im.jpeg ? { jpeg: im.jpeg } : {}),
      })),
      ...(media.audio ? { audio: media.audio.samples } : {}),
      maxNewTokens: req.maxNewTokens,
      ...(req.sampling ? { sampling: req.sampling } : {}),
    };
    this.worker?.ref();
    this.post({ type: 'generate', request: wire });
    // The slot stays held until the worker answers for this id, even after an abort, so a new
    // generation never overlaps one the worker is still stopping.
    const onAbort = () => {
      this.post({ type: 'abort', id });
      channel.fail(new ModelAbortError(signal?.reason));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    let finished = false;
    try {
      for (;;) {
        const r = await channel.next();
        if (r.done) break;
        yield r.value;
        if (r.value.type === 'done') finished = true;
      }
      finished = true;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (!finished && this.pending.has(id)) this.post({ type: 'abort', id });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new ModelError('backend_closed', 'backend closed'));
    this.state = { state: 'error', message: 'backend closed' };
    const worker = this.worker;
    if (!worker) return;
    await new Promise<void>((done) => {
      const timer = setTimeout(done, 2000);
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'disposed') {
          clearTimeout(timer);
          done();
        }
      });
      worker.ref();
      this.post({ type: 'dispose' });
    });
    await worker.terminate();
  }
}
