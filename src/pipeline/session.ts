/**
 * One running stream, as wiring: it constructs the stream's parts, routes what they produce to each
 * other, and closes them — the parts do the work and own what they measure:
 *   MediaInput (media-input.ts)  input subscriber → passthrough relay (+ its output publisher) + sampler
 *   GenerationLoop (loop.ts)     buffers, stream-time trigger, single flight, cycles → records
 *   DataChannel (data-channel.ts) records → NDJSON segments on the data channel, bounded and retried
 *   StreamTelemetry (telemetry.ts) events channel: heartbeats, status, errors (each logged once), last error
 *   ControlReader (control.ts)   params updates from the control channel
 *   ParamsStore (params-store.ts) the params in force and their update path
 * Implements the StreamSession contract (types.ts) that the control API drives. A committed params
 * change, from HTTP or the control channel, is put to work in one place (apply).
 *
 * Ending: the loop stops starting cycles; the running one is aborted (stop, error) or allowed to
 * finish (input ended, bounded by drainCycleMs); then media, control and data close together (data
 * flushes its queue, bounded), then events flush a last status. `done` settles once all of that is
 * over and never rejects.
 */
import type { StreamParams } from '../config/params.js';
import { AppError, errorCode, errorMessage } from '../errors.js';
import { childLogger, type Logger } from '../log.js';
import type { ModelBackend } from '../model/backend.js';
import { TrickleSubscriber } from '../trickle/subscriber.js';
import { ControlReader, type ControlMessage } from './control.js';
import { DataChannel } from './data-channel.js';
import { heartbeatInfo } from './events.js';
import { GenerationLoop } from './loop.js';
import { MediaInput } from './media-input.js';
import { ParamsStore, type ParamsChange } from './params-store.js';
import { StreamTelemetry } from './telemetry.js';
import { assertBackendSupports } from './structured.js';
import type { SessionDeps, SessionFactory, StreamEnd, StreamSession, StreamStartConfig, StreamStatusSnapshot } from './types.js';

export type { SessionDeps };

export class PipelineSession implements StreamSession {
  readonly streamId: string;
  readonly done: Promise<StreamEnd>;

  private readonly cfg: StreamStartConfig;
  private readonly deps: SessionDeps;
  private readonly backend: ModelBackend;
  private readonly log: Logger;
  private readonly store: ParamsStore;

  private readonly loop: GenerationLoop;

  private media: MediaInput | undefined;
  private data: DataChannel | undefined;
  private readonly telemetry: StreamTelemetry;
  private control: ControlReader | undefined;

  private started = false;
  private running = false;
  private ending: Promise<void> | undefined;
  private resolveDone!: (end: StreamEnd) => void;

  private endReason: StreamEnd['reason'] | undefined;

  private readonly startedAtMs = Date.now();

  constructor(cfg: StreamStartConfig, deps: SessionDeps) {
    this.cfg = cfg;
    this.deps = deps;
    this.streamId = cfg.streamId;
    this.backend = deps.backend;
    // Control-channel updates get the same backend check as HTTP ones (the runner's).
    this.store = new ParamsStore(cfg.params, cfg.extraParams, (p) => assertBackendSupports(p, this.backend.capabilities));
    this.log = (deps.logger ?? childLogger('pipeline')).child({ stream_id: cfg.streamId });
    const c = cfg;
    // Reads the stream's state when a heartbeat or status goes out, not when it was last pushed.
    this.telemetry = new StreamTelemetry({
      streamId: cfg.streamId,
      eventsUrl: cfg.eventsUrl,
      heartbeatMs: deps.heartbeatMs ?? 10_000,
      heartbeat: () => {
        const p = this.store.current;
        const seen = this.media?.lastFrameDims;
        return heartbeatInfo(c, { width: p.width ?? seen?.width, height: p.height ?? seen?.height }, this.fps());
      },
      statusInputs: () => ({
        streamId: this.streamId,
        running: this.running,
        ended: this.endReason,
        startedAtMs: this.startedAtMs,
        lastInputAtMs: this.media?.lastInputAtMs,
        lastOutputAtMs: this.loop.stats.lastOutputAtMs,
        lastCycleOk: this.loop.stats.lastCycleOk,
        lastParamsUpdateAtMs: this.store.lastUpdateAtMs,
        inputFps: this.fps().ingress_video_fps,
        cyclesPerS: this.loop.stats.cyclesPerS(),
        params: this.store.current,
        counters: this.status().counters,
      }),
      log: this.log,
    });
    this.loop = new GenerationLoop(cfg.streamId, cfg.params, {
      backend: this.backend,
      publish: (records) => this.data?.publish(records),
      reportError: (code, message, fields) => this.telemetry.error(code, message, fields),
      alert: (fields) => this.telemetry.alert(fields),
      log: this.log,
    });
    this.done = new Promise<StreamEnd>((resolve) => {
      this.resolveDone = resolve;
    });
  }

  params(): StreamParams {
    return this.store.current;
  }

  /** Unknown params keys received so far (start + updates), passed along untouched. */
  extraParams(): Record<string, unknown> {
    return this.store.extras();
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.running = true;
    const c = this.cfg;

    if (c.dataUrl) {
      this.data = new DataChannel({
        streamId: this.streamId,
        url: c.dataUrl,
        maxRecords: this.deps.dataQueueMaxRecords,
        maxBytes: this.deps.dataQueueMaxBytes,
        batchMs: this.deps.dataBatchMs,
        keepaliveMs: this.deps.dataKeepaliveMs,
        log: this.log,
        onError: (code, message, fields) => this.telemetry.error(code, message, fields),
        onPublished: () => {
          if (!c.publishUrl) this.telemetry.firstOutput();
        },
      });
    } else {
      this.log.warn('no data_url in the start request: generated records have nowhere to go and are discarded');
    }
    if (this.store.current.max_frames > this.backend.capabilities.maxImages) this.warnEngineLimit();

    this.telemetry.start();

    if (c.controlUrl) {
      const url = c.controlUrl;
      this.control = new ControlReader({
        connect: (start) => new TrickleSubscriber({ url, start, logger: this.log.child({ channel: 'control' }) }),
        onMessage: (m) => this.onControl(m),
        logger: this.log.child({ channel: 'control' }),
      });
      this.control.start();
    }

    if (c.subscribeUrl) {
      const media = new MediaInput({
        streamId: this.streamId,
        subscribeUrl: c.subscribeUrl,
        publishUrl: c.publishUrl,
        params: this.store.current,
        capabilities: this.backend.capabilities,
        samplerMaxPendingBytes: this.deps.samplerMaxPendingBytes,
        ffmpegPath: this.deps.ffmpegPath,
        log: this.log,
        onFrame: (f) => this.loop.pushFrame(f),
        onAudio: (a) => this.loop.pushAudio(a),
        onError: (code, message, fields) => this.telemetry.error(code, message, fields),
        onFirstInput: () => this.telemetry.event('receive_first_ingest_segment'),
        onFirstOutput: () => this.telemetry.firstOutput(),
      });
      this.media = media;
      media.run().then(
        () => void this.end('input_ended'),
        (err: unknown) => void this.end('error', err),
      );
    }
    this.log.info({ urls: { subscribe: c.subscribeUrl, publish: c.publishUrl, data: c.dataUrl, control: c.controlUrl, events: c.eventsUrl } }, 'stream session started');
  }

  updateParams(next: StreamParams, changed: string[], raw: Record<string, unknown>): void {
    this.apply(this.store.fromHttp(next, changed, raw, Date.now()));
  }

  async stop(reason: StreamEnd['reason']): Promise<void> {
    if (reason === 'stopped' && this.running && !this.ending) this.telemetry.event('stream_stopped');
    await this.end(reason);
  }

  status(): StreamStatusSnapshot {
    const counters: Record<string, number> = {
      ...this.loop.counters(),
      ...this.media?.counters(),
      ...this.data?.counters(),
      ...this.store.counters(),
      ...this.telemetry.counters(),
      cycles_in_flight: this.loop.inFlight ? 1 : 0,
    };
    return {
      stream_id: this.streamId,
      running: this.running,
      started_at_ms: this.startedAtMs,
      fps: this.fps(),
      counters,
      params: this.store.current,
      data_channel: this.cfg.dataUrl ? 'trickle' : 'none',
    };
  }

  // ---- internals ----

  private fps(): StreamStatusSnapshot['fps'] {
    return this.media?.fps() ?? { ingress_video_fps: 0, ingress_audio_fps: 0, egress_video_fps: 0, egress_audio_fps: 0 };
  }

  private warnEngineLimit(): void {
    const fields = { max_frames: this.store.current.max_frames, engine_max_images: this.backend.capabilities.maxImages };
    this.log.warn(fields, 'max_frames exceeds what the engine takes per request; frames are thinned to the engine limit (stats.frames_dropped_by_engine_limit)');
  }

  /** Puts committed params to work: the sampler and the loop follow; the change is announced. */
  private apply(ch: ParamsChange & { kind: 'changed' }): void {
    const { prev, next } = ch;
    if (next.max_frames !== prev.max_frames && next.max_frames > this.backend.capabilities.maxImages) this.warnEngineLimit();
    this.media?.setParams(prev, next);
    // Last: a shorter cadence may make a cycle due right now, and that cycle must see the new params.
    this.loop.setParams(next);
    this.log.info({ changed: ch.changed }, 'parameters updated');
    this.telemetry.event('params_updated', { ...ch.event });
  }

  private onControl(m: ControlMessage): void {
    if (!this.running || this.ending) return;
    const ch = this.store.fromControl(m, Date.now());
    if (ch.kind === 'refused') this.telemetry.error(ch.code, ch.message, { source: 'control', seq: ch.seq });
    else this.apply(ch);
  }

  private end(reason: StreamEnd['reason'], err?: unknown): Promise<void> {
    this.ending ??= this.shutdown(reason, err);
    return this.ending;
  }

  private async shutdown(reason: StreamEnd['reason'], err?: unknown): Promise<void> {
    let error: AppError | undefined;
    if (reason === 'error') {
      error = err instanceof AppError ? err : new AppError(errorCode(err), errorMessage(err), { cause: err });
      this.telemetry.error(error.code, error.message, { source: 'stream' });
    }
    this.endReason = reason;
    this.log.info({ reason }, 'stream session ending');
    // A stream whose input ended lets its last cycle finish; a stop aborts it.
    this.loop.close();
    await this.loop.settle(reason === 'input_ended' ? (this.deps.drainCycleMs ?? 30_000) : 0, this.deps.abortWaitMs ?? 3000);
    this.running = false;
    const flushMs = this.deps.flushTimeoutMs ?? 5000;
    await Promise.all([this.media?.close(), this.control?.close(), this.data?.close(flushMs)]);
    await this.telemetry.close(flushMs);
    this.log.info({ reason, counters: this.status().counters }, 'stream session ended');
    this.resolveDone(error ? { reason, error } : { reason });
  }
}

export function createSessionFactory(deps: SessionDeps): SessionFactory {
  return (config) => new PipelineSession(config, deps);
}
