/**
 * In-process Gemma 3n on Transformers.js + ONNX Runtime (CPU by default): the embedded backend used
 * when no engine URL is configured. The model lives in a worker thread (transformers-worker.ts), so the
 * event loop only shuttles small messages; see that file for what runs where. One generation runs at a
 * time per instance (one model, one ORT session set); later requests wait in a bounded FIFO.
 *
 * On first use with a hub id the files (~5 GB for E2B) are downloaded into the model cache, by default
 * a user cache directory ($XDG_CACHE_HOME or ~/.cache, then gemma3n-trickle/models; MODEL_CACHE_DIR
 * overrides), never into node_modules, which `npm ci` wipes and a container user may not write.
 * Progress goes through `onProgress` (logged by default). A local directory (e.g. the random-weight
 * test model from `make-tiny-model`) is read offline and its file reads are not logged as downloads;
 * serving that test model is logged as such at warn.
 *
 * Load failures are permanent and say why: status() reads 'error' with code `model_load_failed`,
 * `permanent: true` and a message naming the cause (missing directory, unwritable cache, no CUDA
 * provider, …); the runner must be restarted after the cause is fixed. A partial dtype map is merged
 * over DEFAULT_DTYPE (sessions it does not name keep their default, not ONNX Runtime's fp32).
 */
import { accessSync, constants as fsConstants, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { childLogger, type Logger } from '../log.js';
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
import { DEFAULT_DTYPE, DEFAULT_TRANSFORMERS_MODEL, defaultModelCacheDir } from './defaults.js';
import { ModelAbortError, ModelError } from './errors.js';
import { measureGeneration, type RawEvent } from './measure.js';
import { fitMedia } from './request.js';
import type { DtypeOption, FromWorker, ProgressEvent, ToWorker, WireGenerate } from './transformers-protocol.js';

export type { DtypeOption, ProgressEvent } from './transformers-protocol.js';

/** A single dtype applies to every session; a map is merged over DEFAULT_DTYPE. */
export function resolveDtype(dtype: DtypeOption | undefined): DtypeOption {
  if (dtype === undefined) return { ...DEFAULT_DTYPE };
  if (typeof dtype === 'string') return dtype;
  return { ...DEFAULT_DTYPE, ...dtype };
}

/** Whether onnxruntime-node's CUDA execution provider libraries are installed beside its binding. */
export function cudaProviderInstalled(): { installed: boolean; dir?: string } {
  try {
    const entry = createRequire(import.meta.url).resolve('onnxruntime-node');
    const dir = join(dirname(entry), '..', 'bin', 'napi-v6', process.platform, process.arch);
    return { installed: readdirSync(dir).some((f) => f.startsWith('libonnxruntime_providers_cuda')), dir };
  } catch {
    return { installed: false };
  }
}

export interface TransformersBackendOptions {
  /** Hub id or local directory (absolute or relative to the cwd). Default: DEFAULT_TRANSFORMERS_MODEL. */
  model?: string;
  dtype?: DtypeOption;
  /** 'cpu' (default) or 'cuda' (needs ORT's CUDA provider libraries, which npm installs cannot always fetch). */
  device?: string;
  /** Where hub downloads go. Default: defaultModelCacheDir() (MODEL_CACHE_DIR is read by index.ts). */
  cacheDir?: string;
  /** Treat `model` as a local directory even if it does not exist yet (set for --model-dir). */
  local?: boolean;
  /** Where this backend logs (default: the 'model' child of the root logger). */
  logger?: Logger;
  /** Whether a hub id may be downloaded. Default: true for hub ids, false for local directories. */
  allowRemote?: boolean;
  /** Default 1 on cpu (a frame costs seconds of vision + prefill there), 8 on cuda. */
  maxImages?: number;
  /** Generations allowed to wait behind the running one before `engine_busy`. Default 8. */
  maxQueued?: number;
  threads?: number;
  onProgress?: (p: ProgressEvent) => void;
}

interface Pending {
  channel: EventChannel<RawEvent>;
  maxNewTokens: number;
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

/** Whether a local model directory is the random-weight test model (its config.json says so). */
function isTestModel(dir: string): boolean {
  try {
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { _comment?: unknown };
    return typeof cfg._comment === 'string' && /random-weight test model/i.test(cfg._comment);
  } catch {
    return false;
  }
}

function defaultProgressLogger(log: Logger, local: boolean): (p: ProgressEvent) => void {
  const lastDecile = new Map<string, number>();
  return (p) => {
    if (p.status === 'initiate' && p.file) log.debug({ file: p.file }, 'loading model file');
    // Transformers.js reports 'download'/'progress' for local reads too; only a hub fetch is a download.
    if (local) return;
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
  readonly cacheDir: string;
  /** True when serving the random-weight test model (scripted replies, not Gemma 3n). */
  readonly testModel: boolean;
  private caps: BackendCapabilities;
  private readonly opts: TransformersBackendOptions;
  private readonly log: Logger;
  private worker: Worker | undefined;
  private loading: Promise<void> | undefined;
  private state: BackendStatus = { state: 'loading', message: 'model not loaded yet', since: Date.now() };
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private busy = false;
  private readonly waiting: Array<() => void> = [];
  private closed = false;
  private sessions: string[] = [];

  constructor(opts: TransformersBackendOptions = {}) {
    this.opts = opts;
    const model = opts.model ?? DEFAULT_TRANSFORMERS_MODEL;
    this.local = opts.local ?? looksLocal(model);
    // Absolute paths fail Transformers.js's hub-id check, so they are read from disk as-is.
    this.modelId = this.local ? resolve(model) : model;
    this.dtype = resolveDtype(opts.dtype);
    this.device = opts.device ?? 'cpu';
    this.cacheDir = opts.cacheDir ?? defaultModelCacheDir();
    this.testModel = this.local && isTestModel(this.modelId);
    const seq = this.local ? readSeqLengths(this.modelId) : {};
    this.caps = {
      images: true,
      imageEncoding: 'rgb',
      maxImages: opts.maxImages ?? (this.device === 'cpu' ? 1 : 8),
      audio: 'raw',
      tokensPerImage: seq.image ?? TOKENS_PER_IMAGE,
      tokensPerAudioClip: seq.audio ?? TOKENS_PER_AUDIO_CLIP,
    };
    this.log = (opts.logger ?? childLogger('model')).child({ backend: 'transformers', model: this.modelId });
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

  /** Causes a load would otherwise report as a library-internal message, checked up front. */
  private preflight(): string | undefined {
    if (this.local) {
      if (!existsSync(this.modelId)) {
        return `model directory ${this.modelId} does not exist (--model-dir / MODEL_DIR): point it at a Gemma 3n ONNX export (e.g. a clone of onnx-community/gemma-3n-E2B-it-ONNX) or create the random-weight test model with \`make-tiny-model <dir>\``;
      }
      if (!existsSync(join(this.modelId, 'config.json')) || !existsSync(join(this.modelId, 'onnx'))) {
        return `${this.modelId} is not a Gemma 3n ONNX export: it needs config.json, the tokenizer/processor files and an onnx/ folder (--model-dir / MODEL_DIR)`;
      }
    } else if (this.opts.allowRemote ?? true) {
      try {
        mkdirSync(this.cacheDir, { recursive: true });
        accessSync(this.cacheDir, fsConstants.W_OK);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? String(err);
        return `model cache directory ${this.cacheDir} is not writable (${code}): set MODEL_CACHE_DIR to a writable directory (in Docker, mount a volume there)`;
      }
    }
    if (this.device === 'cuda') {
      const cuda = cudaProviderInstalled();
      if (!cuda.installed) {
        return `--device cuda / MODEL_DEVICE=cuda: ONNX Runtime's CUDA provider is not installed on this host (no libonnxruntime_providers_cuda in ${cuda.dir ?? 'onnxruntime-node'}); use --device cpu, or reinstall onnxruntime-node with its CUDA 12 binaries on a machine with an NVIDIA GPU`;
      }
    }
    return undefined;
  }

  private startWorker(): Promise<void> {
    const started = performance.now();
    const failLoad = (message: string, reject: (e: ModelError) => void) => {
      this.state = { state: 'error', code: 'model_load_failed', permanent: true, message: `${message} (restart the runner once this is fixed)`, since: Date.now() };
      this.log.error({ code: 'model_load_failed', err: message }, 'in-process model failed to load; restart needed');
      reject(new ModelError('model_load_failed', message));
    };
    const early = this.preflight();
    if (early) return new Promise<void>((_, reject) => failLoad(early, reject));
    const onProgress = this.opts.onProgress ?? defaultProgressLogger(this.log, this.local);
    const worker = spawnWorker();
    this.worker = worker;
    return new Promise<void>((resolveLoad, rejectLoad) => {
      const failLoad2 = (message: string) => failLoad(message, rejectLoad);
      worker.on('message', (msg: FromWorker) => {
        switch (msg.type) {
          case 'progress':
            onProgress(msg.info);
            break;
          case 'loaded':
            this.sessions = msg.sessions;
            this.caps = { ...this.caps, tokensPerImage: msg.imageSeqLength, tokensPerAudioClip: msg.audioSeqLength };
            this.state = { state: 'ready', since: Date.now() };
            this.log.info({ load_ms: Math.round(performance.now() - started), sessions: msg.sessions, dtype: this.dtype, device: this.device }, 'in-process model loaded');
            if (this.testModel) {
              this.log.warn({ dir: this.modelId }, 'serving the random-weight TEST model: replies are scripted (they only name the modalities received), not Gemma 3n');
            }
            this.setIdle();
            resolveLoad();
            break;
          case 'load_error':
            failLoad2(
              `could not load ${this.modelId}: ${msg.message}` +
                (this.device === 'cuda' && /cuda|provider|shared librar/i.test(msg.message)
                  ? ' (--device cuda needs an NVIDIA GPU with CUDA 12/cuDNN and ONNX Runtime\'s CUDA binaries; use --device cpu on this host)'
                  : '') +
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
        failLoad2(message);
        this.failAll(new ModelError('engine_error', message, { cause: err }));
      });
      worker.on('exit', (code) => {
        this.worker = undefined;
        if (this.closed) {
          rejectLoad(new ModelError('backend_closed', 'backend closed while loading'));
        } else {
          const message = `model worker exited (code ${code})`;
          if (this.state.state === 'ready') {
            this.state = { state: 'error', code: 'engine_error', permanent: true, message: `${message} (restart the runner)`, since: Date.now() };
            this.log.error({ code }, message);
          } else failLoad2(message);
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
          cacheDir: this.cacheDir,
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
      p.channel.push({ type: 'delta', text: msg.text });
      return;
    }
    this.pending.delete(msg.id);
    if (msg.type === 'done') {
      // the reply text is the streamed deltas, joined (measure.ts); the worker sends none of its own
      p.channel.push({
        type: 'end',
        usage: { promptTokens: msg.promptTokens, completionTokens: msg.completionTokens },
        encodeMs: msg.encodeMs,
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

  /** Timings, abort and the one `done` come from measure.ts; the worker's answer comes from exchange(). */
  generate(req: GenerateRequest): AsyncGenerator<GenerateEvent> {
    return measureGeneration(this.exchange(req), { signal: req.signal });
  }

  /** One generation in the worker as raw events; holds the model's one slot until the worker answers. */
  private async *exchange(req: GenerateRequest): AsyncGenerator<RawEvent> {
    const signal = req.signal;
    await this.load();
    await this.acquire(signal);
    if (signal?.aborted) {
      this.release();
      throw new ModelAbortError(signal.reason);
    }
    const t0 = performance.now();
    const media = fitMedia(req, this.caps);
    if (media.droppedImages > 0) this.log.warn({ dropped: media.droppedImages }, 'more images than maxImages; thinned evenly');
    const id = ++this.nextId;
    const channel = new EventChannel<RawEvent>();
    this.pending.set(id, { channel, maxNewTokens: req.maxNewTokens });
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
    const encodeMs = performance.now() - t0;
    this.worker?.ref();
    this.post({ type: 'generate', request: wire });
    // The slot stays held until the worker answers for this id, even after an abort, so a new
    // generation never overlaps one the worker is still stopping.
    const onAbort = () => {
      this.post({ type: 'abort', id });
      channel.fail(new ModelAbortError(signal?.reason));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      yield { type: 'sent', encodeMs };
      for (;;) {
        const r = await channel.next();
        if (r.done) return;
        yield r.value;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      // Still pending: the caller stopped reading before the worker finished; stop it there.
      if (this.pending.has(id)) this.post({ type: 'abort', id });
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
