/**
 * The stream registry: up to `capacity` streams per runner (CAPABILITY_CAPACITY; 1 = one stream, as
 * PyTrickle), keyed by stream id — X-Stream-Id, which go-livepeer sends on every start, params and stop
 * ("for routing to worker"), else the start body's gateway_request_id. The rules of spec §4.3–§4.5,
 * with its faults fixed:
 * - a start claims its place synchronously, so of N concurrent starts exactly the free places win and
 *   the rest answer 503 `Pipeline is still in use` (§6.2) — the orchestrator only counts, so the limit
 *   is enforced here; a start naming an id that runs (or is starting) answers 409 and changes nothing;
 * - a stream that ends on its own frees its place at once, so /status and /health read true (§6.3);
 * - a failing update answers an error and changes nothing; it never sets a sticky ERROR (§6.4);
 * - params/stop carrying an X-Stream-Id that is not running answer 404 and change nothing (a stale
 *   stop never kills another stream); without the header they act on the only running stream, and
 *   answer 400 when several run (they must be named);
 * - a start waits only briefly (startWaitMs, default 5 s) for a loading backend, then answers 503 with
 *   the backend's reason; a backend that failed to load says so instead of "still initializing";
 * - a stream's metric series are removed when it ends, and a new stream under the same id waits for
 *   that removal, so it never loses its own fresh series;
 * - the stream's unknown params are bounded across updates (params.ts limits).
 */
import { AppError, errorCode, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { parseParamsUpdate, parseStartParams, type StreamParams } from '../config/params.js';
import { SERVER_DEFAULTS } from '../config/defaults.js';
import type { SessionFactory, StreamSession, StreamStartConfig } from '../pipeline/types.js';
import type { ModelBackend } from '../model/backend.js';
import { RunnerState } from './state.js';
import type { StartRequest } from './requests.js';
import { metrics, forgetStream } from '../metrics.js';
import { delay } from '../util/time.js';
import { assertBackendSupports } from '../pipeline/structured.js';

export class PipelineBusyError extends AppError {
  constructor(message: string) {
    super('pipeline_unavailable', message);
  }
}

export class NoActiveStreamError extends AppError {
  constructor(message: string) {
    super('no_active_stream', message);
  }
}

export class StreamNotFoundError extends AppError {
  constructor(message: string) {
    super('stream_not_found', message);
  }
}

export class StreamAlreadyRunningError extends AppError {
  constructor(message: string) {
    super('stream_already_running', message);
  }
}

export class StreamIdRequiredError extends AppError {
  constructor(message: string) {
    super('stream_id_required', message);
  }
}

export const DEFAULT_START_WAIT_MS: number = SERVER_DEFAULTS.startWaitMs;

export interface StartResult {
  session: StreamSession;
  ignored: string[];
}

/** A running stream and the start config it runs with. */
export interface StreamEntry {
  session: StreamSession;
  config: StreamStartConfig;
}

export class Runner {
  readonly state: RunnerState;
  /** Running streams by id, in start order. */
  private readonly entries = new Map<string, StreamEntry>();
  /** Ids whose start is under way (claimed, not yet running). */
  private readonly starting = new Set<string>();
  /** Metric-series removals of ended streams, by id, until done. */
  private readonly forgetting = new Map<string, Promise<void>>();
  /** Set when the backend's load() rejected: nothing retries it, so a start must say so. */
  private loadFailure: string | undefined;

  constructor(
    private readonly backend: ModelBackend,
    private readonly factory: SessionFactory,
    private readonly log: Logger,
    private readonly startWaitMs = DEFAULT_START_WAIT_MS,
    readonly capacity = 1,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be an integer ≥ 1 (got ${capacity})`);
    this.state = new RunnerState(
      () => backend.status(),
      () => this.entries.size + this.starting.size,
    );
  }

  /** The only running stream (PyTrickle's view); undefined when none or several run. */
  current(): StreamEntry | undefined {
    if (this.entries.size !== 1) return undefined;
    return this.entries.values().next().value;
  }

  /** Every running stream, in start order. */
  streams(): StreamEntry[] {
    return [...this.entries.values()];
  }

  get(streamId: string): StreamEntry | undefined {
    return this.entries.get(streamId);
  }

  /** No stream running or starting (BYOC re-registration is only safe then). */
  idle(): boolean {
    return this.entries.size === 0 && this.starting.size === 0;
  }

  /** Records that the backend's one load() failed (index.ts), so starts answer that truthfully. */
  noteLoadFailure(message: string): void {
    this.loadFailure = message;
    this.state.setFatal(`model backend failed to load: ${message}`);
  }

  /** Why a start cannot run now, in words a caller can act on; undefined when ready. */
  private notReadyReason(): string | undefined {
    if (this.state.ready()) return undefined;
    const s = this.backend.status();
    const why = s.message;
    if (this.loadFailure !== undefined || (s.state === 'error' && s.permanent === true)) {
      return `Model backend failed to load and will not recover on its own: ${this.loadFailure ?? why ?? 'unknown error'}. Fix the configuration and restart the runner.`;
    }
    if (s.state === 'error') {
      return `Model backend is unavailable${why ? `: ${why}` : ''}. The runner keeps retrying; /health reads IDLE once it recovers.`;
    }
    return `Pipeline is still initializing${why ? ` (${why})` : ''}. Please wait for IDLE status.`;
  }

  /** Waits briefly for a loading backend (PyTrickle awaits its startup task), then answers with the reason. */
  private async waitUntilReady(): Promise<void> {
    const deadline = Date.now() + this.startWaitMs;
    while (this.backend.status().state === 'loading' && this.loadFailure === undefined && Date.now() < deadline) {
      await delay(50);
    }
    const reason = this.notReadyReason();
    if (reason !== undefined) throw new PipelineBusyError(reason);
  }

  /**
   * The stream a params/stop call names: `streamId` (X-Stream-Id or the route's id) must be running;
   * `undefined` means "the only one". Returns the error instead of throwing, so update() can validate first.
   */
  private lookup(streamId: string | undefined, what: 'update' | 'stop'): StreamSession | AppError {
    if (this.entries.size === 0) return new NoActiveStreamError(what === 'update' ? 'No active stream to update' : 'No active stream to stop');
    if (streamId !== undefined) {
      const e = this.entries.get(streamId);
      if (e) return e.session;
      return new StreamNotFoundError(`No stream with X-Stream-Id "${streamId}" is running; nothing was ${what === 'update' ? 'updated' : 'stopped'}`);
    }
    const only = this.current();
    if (only) return only.session;
    return new StreamIdRequiredError(
      `${this.entries.size} streams are running; name one with X-Stream-Id (or use /streams/{id}/${what === 'update' ? 'params' : 'stop'}); nothing was ${what === 'update' ? 'updated' : 'stopped'}`,
    );
  }

  /** `streamId` is the X-Stream-Id header when sent (it wins over the body's gateway_request_id). */
  async start(req: StartRequest, streamId: string = req.gateway_request_id): Promise<StartResult> {
    // Validation first: a bad request is a 400 whatever the state, and starts nothing.
    const parsed = parseStartParams(req.params);
    assertBackendSupports(parsed.params, this.backend.capabilities); // output_schema needs a backend that can constrain decoding
    await this.waitUntilReady();
    // Claimed synchronously after these checks: concurrent starts cannot both take the last place.
    if (this.entries.size + this.starting.size >= this.capacity) throw new PipelineBusyError('Pipeline is still in use');
    if (this.entries.has(streamId) || this.starting.has(streamId)) {
      throw new StreamAlreadyRunningError(`A stream with id "${streamId}" is already running; stop it first or start under another id`);
    }
    this.starting.add(streamId);
    const config: StreamStartConfig = {
      streamId,
      subscribeUrl: req.subscribe_url,
      publishUrl: req.publish_url,
      dataUrl: req.data_url,
      controlUrl: req.control_url,
      eventsUrl: req.events_url,
      params: parsed.params,
      extraParams: parsed.extra,
    };
    let session: StreamSession;
    try {
      // An ended stream of the same id may still be removing its metric series.
      await this.forgetting.get(streamId);
      session = this.factory(config);
      await session.start();
    } catch (err) {
      this.starting.delete(streamId);
      throw new AppError('stream_start_failed', errorMessage(err), { cause: err });
    }
    this.starting.delete(streamId);
    this.entries.set(streamId, { session, config });
    metrics.activeStreams.set(this.entries.size);
    this.log.info({ stream_id: config.streamId, ignored_params: parsed.ignored, active_streams: this.entries.size }, 'stream started');
    if (!config.dataUrl) this.log.warn({ stream_id: config.streamId }, 'no data_url in the start request: generated records will be dropped');
    // The one place a stream's place is freed, whatever ended it (stop, input end, error, shutdown).
    // It is the first reaction on `done`, so callers awaiting `done` see the place already free.
    void session.done.then((end) => {
      if (end.error) this.state.noteStreamError(session.streamId, end.error.code, end.error.message);
      this.log.info({ stream_id: session.streamId, reason: end.reason, err: end.error?.message }, 'stream ended');
      if (this.entries.get(streamId)?.session === session) {
        this.entries.delete(streamId);
        metrics.activeStreams.set(this.entries.size);
      }
      const forgotten: Promise<void> = forgetStream(session.streamId)
        .catch((err: unknown) => this.log.warn({ stream_id: streamId, err: errorMessage(err) }, 'removing the stream\'s metric series failed'))
        .finally(() => {
          if (this.forgetting.get(streamId) === forgotten) this.forgetting.delete(streamId);
        });
      this.forgetting.set(streamId, forgotten);
    });
    return { session, ignored: parsed.ignored };
  }

  /** Validates against the parameters in force (or the defaults when idle) before the no-stream check, as PyTrickle. */
  update(raw: unknown, streamId?: string): { params: StreamParams; ignored: string[] } {
    const found = this.lookup(streamId, 'update');
    const target = found instanceof AppError ? undefined : found;
    const base = target?.params() ?? parseStartParams(undefined).params;
    // The session holds the kept unknown keys (HTTP and control-channel updates alike), so the
    // per-stream limits count both.
    const parsed = parseParamsUpdate(base, raw, target?.extraParams() ?? {});
    assertBackendSupports(parsed.params, this.backend.capabilities);
    if (found instanceof AppError) throw found;
    const session = found;
    try {
      session.updateParams(parsed.params, parsed.changed, raw as Record<string, unknown>);
    } catch (err) {
      this.log.warn({ stream_id: session.streamId, err: errorMessage(err) }, 'parameter update failed');
      // applying is our side: whatever the cause's code, the caller sees a server fault
      throw new AppError('internal', errorMessage(err), { cause: err });
    }
    return { params: parsed.params, ignored: parsed.ignored };
  }

  async stop(streamId?: string): Promise<void> {
    const found = this.lookup(streamId, 'stop');
    if (found instanceof AppError) throw found;
    await found.stop('stopped');
    await found.done;
  }

  /** Process shutdown: stop every stream at once (each flushes its data queue), bounded by the caller's deadline. */
  async shutdown(): Promise<void> {
    await Promise.all(
      this.streams().map(async ({ session }) => {
        await session.stop('shutdown');
        await session.done;
      }),
    );
    await Promise.all([...this.forgetting.values()]);
  }
}
