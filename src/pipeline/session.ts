/**
 * One running stream: wires trickle input → relay (passthrough) + sampler → rolling buffers →
 * stream-time scheduler → cycles → data records, with live control (HTTP and control channel) and the
 * events channel. Implements the StreamSession contract (types.ts) that the control API drives.
 *
 * Concurrency rules: at most one cycle in flight; a due point passing while one runs waits and runs
 * when it finishes (catch-up of one, scheduler.ts CycleSlot); due points beyond that are skipped and
 * counted. Stop aborts the running model request, then flushes queued records and events, then
 * closes every channel. The passthrough output publisher is created here but handed to the relay,
 * its one owner, which closes it (bounded) once it has stopped writing. `done` settles once all of
 * that is over and never rejects.
 *
 * Media buffers follow stream time: on a timestamp discontinuity both are cleared before the new
 * media goes in, and stale media (older than the cycle's window) ages out before every cycle.
 * The data channel gets a zero-byte keepalive segment after `dataKeepaliveMs` without a write.
 */
import { KNOWN_PARAM_KEYS, parseParamsUpdate, type StreamParams } from '../config/params.js';
import { AppError, errorCode, errorMessage, type ErrorCode } from '../errors.js';
import { childLogger, type Logger } from '../log.js';
import { metrics } from '../metrics.js';
import type { ModelBackend } from '../model/backend.js';
import type { SamplerSettings } from '../media/types.js';
import { MediaSampler } from '../media/sampler.js';
import { MediaRelay } from '../media/relay.js';
import { TricklePublisher } from '../trickle/publisher.js';
import { TrickleSubscriber } from '../trickle/subscriber.js';
import { ControlReader, type ControlMessage } from './control.js';
import type { CycleRecord } from './cycle.js';
import { GenerationLoop, mediaMaxAgeMs } from './loop.js';
import { SegmentQueue } from './data-writer.js';
import { EventsWriter } from './events.js';
import { serializeRecord } from './records.js';
import { paramsUpdatedFields } from './events.js';
import { RateMeter, statusEventFields, type StatusInputs } from './status.js';
import type { SessionFactory, StreamEnd, StreamSession, StreamStartConfig, StreamStatusSnapshot } from './types.js';

export interface SessionDeps {
  backend: ModelBackend;
  logger?: Logger;
  /** Heartbeat (and status event) cadence; the gateway needs one at least every 30 s. */
  heartbeatMs?: number;
  /** How long a record waits for others to share its data segment. */
  dataBatchMs?: number;
  dataQueueMaxRecords?: number;
  dataQueueMaxBytes?: number;
  /** Bound on flushing queued records/events at stop. */
  flushTimeoutMs?: number;
  /** When input ends, how long a running cycle may still take before it is aborted. */
  drainCycleMs?: number;
  /** Bound on waiting for an aborted model request to settle at stop. */
  abortWaitMs?: number;
  samplerMaxPendingBytes?: number;
  /**
   * A zero-byte data segment goes out when nothing was published on the data channel for this long
   * (default 60 s; 0 = never). go-livepeer sweeps a channel idle for 5 min, and the gateway then stops
   * the stream.
   */
  dataKeepaliveMs?: number;
}

export { mediaMaxAgeMs };

interface Counters {
  segments_in: number;
  bytes_in: number;
  frames_in: number;
  audio_chunks_in: number;
  audio_ms_in: number;
  records_queued: number;
  records_published: number;
  records_dropped: number;
  data_publish_failures: number;
  control_messages: number;
  control_errors: number;
  params_updates: number;
  media_errors: number;
}

function samplerSettings(p: StreamParams, backend: ModelBackend): SamplerSettings {
  return {
    targetFps: p.target_fps,
    enableDownscale: p.enable_downscale,
    downscalePx: p.downscale_px,
    modality: p.modality,
    jpegQuality: p.jpeg_quality,
    letterbox: p.letterbox,
    // What the backend takes, as it declares it (the pipeline never branches on the backend's kind).
    wantJpeg: (backend.capabilities.imageEncoding ?? 'jpeg') === 'jpeg',
    wantRgb: backend.capabilities.imageEncoding === 'rgb',
  };
}

const SAMPLER_KEYS: ReadonlyArray<[keyof StreamParams, keyof SamplerSettings]> = [
  ['target_fps', 'targetFps'],
  ['enable_downscale', 'enableDownscale'],
  ['downscale_px', 'downscalePx'],
  ['modality', 'modality'],
  ['jpeg_quality', 'jpegQuality'],
  ['letterbox', 'letterbox'],
];

export class PipelineSession implements StreamSession {
  readonly streamId: string;
  readonly done: Promise<StreamEnd>;

  private readonly cfg: StreamStartConfig;
  private readonly deps: SessionDeps;
  private readonly backend: ModelBackend;
  private readonly log: Logger;
  private p: StreamParams;
  private extra: Record<string, unknown>;

  private readonly loop: GenerationLoop;

  private sampler: MediaSampler | undefined;
  private relay: MediaRelay | undefined;
  private data: SegmentQueue | undefined;
  private events: EventsWriter | undefined;
  private control: ControlReader | undefined;

  private started = false;
  private running = false;
  private ending: Promise<void> | undefined;
  private resolveDone!: (end: StreamEnd) => void;

  private firstOutputSent = false;
  private dataOutage = false;
  private endReason: StreamEnd['reason'] | undefined;

  private readonly startedAtMs = Date.now();
  private lastInputAtMs: number | undefined;
  private lastParamsUpdateAtMs: number | undefined;
  private lastError: { atMs: number; code: ErrorCode; message: string } | undefined;
  private lastFrameDims: { width: number; height: number } | undefined;
  private readonly videoRate = new RateMeter();
  private readonly audioRate = new RateMeter();
  private readonly outRate = new RateMeter();
  private readonly counters: Counters = {
    segments_in: 0,
    bytes_in: 0,
    frames_in: 0,
    audio_chunks_in: 0,
    audio_ms_in: 0,
    records_queued: 0,
    records_published: 0,
    records_dropped: 0,
    data_publish_failures: 0,
    control_messages: 0,
    control_errors: 0,
    params_updates: 0,
    media_errors: 0,
  };

  constructor(cfg: StreamStartConfig, deps: SessionDeps) {
    this.cfg = cfg;
    this.deps = deps;
    this.streamId = cfg.streamId;
    this.backend = deps.backend;
    this.p = cfg.params;
    this.extra = { ...cfg.extraParams };
    this.log = (deps.logger ?? childLogger('pipeline')).child({ stream_id: cfg.streamId });
    this.loop = new GenerationLoop(cfg.streamId, this.p, {
      backend: this.backend,
      publish: (records) => this.publish(records),
      takeRecordsDropped: () => this.data?.takeDropped() ?? 0,
      reportError: (code, message, fields) => this.emitError(code, message, fields),
      log: this.log,
    });
    this.done = new Promise<StreamEnd>((resolve) => {
      this.resolveDone = resolve;
    });
  }

  params(): StreamParams {
    return this.p;
  }

  /** Unknown params keys received so far (start + updates), passed along untouched. */
  extraParams(): Record<string, unknown> {
    return { ...this.extra };
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.running = true;
    const c = this.cfg;
    const L = { stream_id: this.streamId };

    if (c.dataUrl) {
      this.data = new SegmentQueue({
        sink: new TricklePublisher({ url: c.dataUrl, mimeType: 'application/jsonl', logger: this.log.child({ channel: 'data' }) }),
        maxItems: this.deps.dataQueueMaxRecords ?? 1000,
        maxBytes: this.deps.dataQueueMaxBytes ?? 8 * 1024 * 1024,
        batchMs: this.deps.dataBatchMs ?? 100,
        keepaliveMs: this.deps.dataKeepaliveMs ?? 60_000,
        logger: this.log.child({ channel: 'data' }),
        onPublished: (n) => {
          this.dataOutage = false;
          this.counters.records_published += n;
          metrics.recordsPublished.inc(L, n);
          metrics.queueDepth.set({ ...L, queue: 'data' }, this.data?.stats().queued ?? 0);
          if (!c.publishUrl) this.noteFirstOutput();
        },
        onDropped: (n) => {
          this.counters.records_dropped += n;
          metrics.recordsDropped.inc(L, n);
        },
        onPublishError: (err) => {
          this.counters.data_publish_failures++;
          // Only the first failure of an outage is worth an event; the retries are expected.
          if (!this.dataOutage) this.emitError('data_publish_failed', errorMessage(err), { channel: 'data' });
          this.dataOutage = true;
        },
      });
    } else {
      this.log.warn('no data_url in the start request: generated records have nowhere to go and are discarded');
    }
    if (this.p.max_frames > this.backend.capabilities.maxImages) this.warnEngineLimit();

    if (c.eventsUrl) {
      this.events = new EventsWriter({
        sink: new TricklePublisher({ url: c.eventsUrl, mimeType: 'application/json', logger: this.log.child({ channel: 'events' }) }),
        streamId: this.streamId,
        heartbeatMs: this.deps.heartbeatMs ?? 10_000,
        heartbeat: () => ({
          urls: {
            subscribe: c.subscribeUrl ?? '',
            publish: c.publishUrl ?? '',
            control: c.controlUrl ?? '',
            events: c.eventsUrl ?? '',
            data: c.dataUrl ?? '',
          },
          dimensions: {
            width: this.p.width ?? this.lastFrameDims?.width ?? 0,
            height: this.p.height ?? this.lastFrameDims?.height ?? 0,
          },
          fps: this.fps(),
        }),
        onTick: () => this.emitStatus(),
        logger: this.log.child({ channel: 'events' }),
      });
      this.events.start();
    }

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
      const sampler = new MediaSampler({
        settings: samplerSettings(this.p, this.backend),
        ...(this.deps.samplerMaxPendingBytes !== undefined ? { maxPendingBytes: this.deps.samplerMaxPendingBytes } : {}),
        logger: this.log.child({ component: 'sampler' }),
      });
      sampler.on('frame', (f) => {
        if (!this.running) return;
        this.counters.frames_in++;
        this.videoRate.mark();
        this.lastInputAtMs = Date.now();
        this.lastFrameDims = { width: f.width, height: f.height };
        metrics.framesSampled.inc(L);
        this.loop.pushFrame(f);
      });
      sampler.on('audio', (a) => {
        if (!this.running) return;
        const ms = (a.samples.length / a.sampleRate) * 1000;
        this.counters.audio_chunks_in++;
        this.counters.audio_ms_in += ms;
        this.audioRate.mark();
        this.lastInputAtMs = Date.now();
        this.loop.pushAudio(a);
      });
      sampler.on('error', (err: unknown) => {
        this.counters.media_errors++;
        if (errorCode(err) === 'segment_dropped') metrics.segmentsDropped.inc({ stream_id: this.streamId, where: 'sampler' });
        this.emitError(errorCode(err), errorMessage(err), { source: 'sampler' });
      });
      this.sampler = sampler;

      let output: TricklePublisher | undefined;
      if (c.publishUrl) {
        // deleteOnClose: at the stream's end the output channel is deleted, which output readers get as
        // end of stream (Lp-Trickle-Closed), as go-livepeer's and ai-runner's publishers do on Close().
        output = new TricklePublisher({ url: c.publishUrl, mimeType: 'video/MP2T', deleteOnClose: true, logger: this.log.child({ channel: 'output' }) });
      }
      const relay = new MediaRelay({
        subscriber: new TrickleSubscriber({ url: c.subscribeUrl, logger: this.log.child({ channel: 'input' }) }),
        ...(output ? { publisher: output } : {}),
        sampler,
        logger: this.log.child({ component: 'relay' }),
      });
      const sid = { stream_id: this.streamId };
      relay.on('input-segment', (s: { seq: number; bytes: number }) => {
        this.counters.segments_in++;
        this.counters.bytes_in += s.bytes;
        this.lastInputAtMs = Date.now();
        metrics.segmentsIn.inc(sid);
        metrics.bytesIn.inc(sid, s.bytes);
      });
      relay.on('output-segment', () => metrics.segmentsOut.inc(sid));
      relay.on('output-bytes', (n: number) => metrics.bytesOut.inc(sid, n));
      relay.on('output-dropped', () => metrics.segmentsDropped.inc({ ...sid, where: 'output' }));
      relay.on('first-input-segment', () => this.events?.emit('receive_first_ingest_segment'));
      relay.on('first-output-segment', () => this.noteFirstOutput());
      relay.on('error', (err: unknown) => {
        this.counters.media_errors++;
        this.emitError(errorCode(err), errorMessage(err), { source: 'relay' });
      });
      this.relay = relay;
      relay.run().then(
        () => void this.end('input_ended'),
        (err: unknown) => void this.end('error', err),
      );
    }
    this.log.info({ urls: { subscribe: c.subscribeUrl, publish: c.publishUrl, data: c.dataUrl, control: c.controlUrl, events: c.eventsUrl } }, 'stream session started');
  }

  updateParams(next: StreamParams, changed: string[], raw: Record<string, unknown>): void {
    for (const [k, v] of Object.entries(raw)) if (!KNOWN_PARAM_KEYS.has(k)) this.extra[k] = v;
    this.apply(next, changed);
    this.events?.emit('params_updated', { ...paramsUpdatedFields(next, raw, KNOWN_PARAM_KEYS) });
  }

  async stop(reason: StreamEnd['reason']): Promise<void> {
    if (reason === 'stopped' && this.running && !this.ending) this.events?.emit('stream_stopped');
    await this.end(reason);
  }

  status(): StreamStatusSnapshot {
    const counters: Record<string, number> = { ...this.loop.counters(), ...this.counters, cycles_in_flight: this.loop.inFlight ? 1 : 0 };
    if (this.data) {
      const s = this.data.stats();
      counters.records_waiting = s.queued;
      counters.data_keepalives = s.keepalives;
    }
    if (this.sampler) {
      const s = this.sampler.stats();
      counters.sampler_segments_dropped = s.segmentsDropped;
      counters.decode_errors = s.decodeErrors;
      counters.decoder_restarts = s.decoderRestarts;
    }
    if (this.relay) counters.output_segments_dropped = this.relay.stats().outputDropped;
    if (this.events) {
      const s = this.events.stats();
      counters.events_published = s.published;
      counters.events_dropped = s.dropped;
    }
    return {
      stream_id: this.streamId,
      running: this.running,
      started_at_ms: this.startedAtMs,
      fps: this.fps(),
      counters,
      params: this.p,
      data_channel: this.cfg.dataUrl ? 'trickle' : 'none',
    };
  }

  // ---- internals ----

  private fps(): StreamStatusSnapshot['fps'] {
    const v = this.videoRate.rate();
    return {
      ingress_video_fps: v,
      ingress_audio_fps: this.audioRate.rate(),
      // Output is passthrough: whatever arrives leaves at the same rate.
      egress_video_fps: this.cfg.publishUrl ? v : 0,
      egress_audio_fps: this.cfg.publishUrl ? this.audioRate.rate() : 0,
    };
  }

  private warnEngineLimit(): void {
    this.log.warn(
      { max_frames: this.p.max_frames, engine_max_images: this.backend.capabilities.maxImages },
      'max_frames exceeds what the engine takes per request; frames are thinned to the engine limit (stats.frames_dropped_by_engine_limit)',
    );
  }

  private noteFirstOutput(): void {
    if (this.firstOutputSent) return;
    this.firstOutputSent = true;
    this.events?.emit('send_first_processed_segment');
  }

  private emitError(code: ErrorCode, message: string, fields: Record<string, unknown> = {}): void {
    this.lastError = { atMs: Date.now(), code, message };
    this.log.warn({ code, err: message, ...fields }, 'stream error');
    this.events?.emit('error', { error: { code, message }, message, ...fields });
  }

  private statusInputs(): StatusInputs {
    return {
      streamId: this.streamId,
      running: this.running,
      ended: this.endReason,
      startedAtMs: this.startedAtMs,
      lastInputAtMs: this.lastInputAtMs,
      lastOutputAtMs: this.loop.lastOutputAtMs,
      lastCycleOk: this.loop.lastCycleOk,
      lastParamsUpdateAtMs: this.lastParamsUpdateAtMs,
      lastError: this.lastError,
      inputFps: this.videoRate.rate(),
      cyclesPerS: this.loop.cyclesPerS(),
      params: this.p,
      counters: this.status().counters,
    };
  }

  private emitStatus(): void {
    this.events?.emit('status', statusEventFields(this.statusInputs()), 'ai_stream_status');
  }

  private apply(next: StreamParams, changed: string[]): void {
    const prev = this.p;
    this.p = next;
    this.counters.params_updates++;
    this.lastParamsUpdateAtMs = Date.now();
    if (next.max_frames !== prev.max_frames && next.max_frames > this.backend.capabilities.maxImages) this.warnEngineLimit();
    const patch: Partial<SamplerSettings> = {};
    let samplerChanged = false;
    for (const [pk, sk] of SAMPLER_KEYS) {
      if (next[pk] !== prev[pk]) {
        (patch as Record<string, unknown>)[sk] = next[pk];
        samplerChanged = true;
      }
    }
    if (samplerChanged) this.sampler?.updateSettings(patch);
    // Last: a shorter cadence may make a cycle due right now, and that cycle must see the new params.
    this.loop.setParams(next);
    this.log.info({ changed }, 'parameters updated');
  }

  private onControl(m: ControlMessage): void {
    if (!this.running || this.ending) return;
    this.counters.control_messages++;
    if (m.kind === 'invalid') {
      this.counters.control_errors++;
      this.emitError(m.code, m.message, { source: 'control', seq: m.seq });
      return;
    }
    try {
      const parsed = parseParamsUpdate(this.p, m.payload, this.extra);
      this.extra = parsed.extra;
      this.apply(parsed.params, parsed.changed);
      this.events?.emit('params_updated', {
        ...paramsUpdatedFields(parsed.params, m.payload, KNOWN_PARAM_KEYS),
        source: 'control',
      });
    } catch (err) {
      this.counters.control_errors++;
      this.emitError(errorCode(err), errorMessage(err), { source: 'control', seq: m.seq });
    }
  }

  private publish(records: CycleRecord[]): void {
    for (const r of records) {
      this.counters.records_queued++;
      this.data?.enqueue(serializeRecord(r));
    }
    if (this.data) metrics.queueDepth.set({ stream_id: this.streamId, queue: 'data' }, this.data.stats().queued);
  }

  private end(reason: StreamEnd['reason'], err?: unknown): Promise<void> {
    this.ending ??= this.shutdown(reason, err);
    return this.ending;
  }

  private async shutdown(reason: StreamEnd['reason'], err?: unknown): Promise<void> {
    let error: AppError | undefined;
    if (reason === 'error') {
      error = err instanceof AppError ? err : new AppError(errorCode(err), errorMessage(err), { cause: err });
      this.emitError(error.code, error.message, { source: 'stream' });
    }
    this.endReason = reason;
    this.log.info({ reason }, 'stream session ending');
    // A stream whose input ended lets its last cycle finish; a stop aborts it.
    this.loop.close();
    await this.loop.settle(reason === 'input_ended' ? (this.deps.drainCycleMs ?? 30_000) : 0, this.deps.abortWaitMs ?? 3000);
    this.running = false;
    const flushMs = this.deps.flushTimeoutMs ?? 5000;
    const closers: Array<Promise<unknown>> = [];
    if (this.relay) closers.push(this.relay.stop().catch((e: unknown) => this.log.debug({ err: errorMessage(e) }, 'relay stop failed')));
    if (this.sampler) closers.push(this.sampler.close().catch((e: unknown) => this.log.debug({ err: errorMessage(e) }, 'sampler close failed')));
    if (this.control) closers.push(this.control.stop());
    if (this.data) closers.push(this.data.close(flushMs));
    await Promise.all(closers);
    if (this.events) {
      this.emitStatus();
      await this.events.close(flushMs);
    }
    this.log.info({ reason, counters: this.status().counters }, 'stream session ended');
    this.resolveDone(error ? { reason, error } : { reason });
  }
}

export function createSessionFactory(deps: SessionDeps): SessionFactory {
  return (config) => new PipelineSession(config, deps);
}
