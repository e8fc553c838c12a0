/**
 * The stream slot: at most one stream per runner (as PyTrickle), with the start/update/stop rules
 * of spec §4.3–§4.5 and its faults fixed:
 * - the slot is claimed synchronously, so of N concurrent starts exactly one wins (§6.2);
 * - a stream that ends on its own frees the slot at once, so /status and /health read IDLE (§6.3);
 * - a failing update answers an error and changes nothing; it never sets a sticky ERROR (§6.4);
 * - params/stop carrying an X-Stream-Id that is not the running stream answer 404 and change nothing
 *   (a stale stop never kills the next stream); without the header they act on the one active stream;
 * - a start waits only briefly (startWaitMs, default 5 s) for a loading backend, then answers 503 with
 *   the backend's reason; a backend that failed to load says so instead of "still initializing";
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
    super('pipeline_unavailable', message, { httpStatus: 503 });
  }
}

export class NoActiveStreamError extends AppError {
  constructor(message: string) {
    super('no_active_stream', message, { httpStatus: 400 });
  }
}

export class StreamNotFoundError extends AppError {
  constructor(message: string) {
    super('stream_not_found', message, { httpStatus: 404 });
  }
}

export const DEFAULT_START_WAIT_MS: number = SERVER_DEFAULTS.startWaitMs;

export interface StartResult {
  session: StreamSession;
  ignored: string[];
}

export class Runner {
  readonly state: RunnerState;
  private session: StreamSession | undefined;
  private config: StreamStartConfig | undefined;
  private claimed = false;
  /** Set when the backend's load() rejected: nothing retries it, so a start must say so. */
  private loadFailure: string | undefined;

  constructor(
    private readonly backend: ModelBackend,
    private readonly factory: SessionFactory,
    private readonly log: Logger,
    private readonly startWaitMs = DEFAULT_START_WAIT_MS,
  ) {
    this.state = new RunnerState(
      () => backend.status(),
      () => (this.session || this.claimed ? 1 : 0),
    );
  }

  current(): { session: StreamSession; config: StreamStartConfig } | undefined {
    return this.session && this.config ? { session: this.session, config: this.config } : undefined;
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

  /** The stream a params/stop call names must be the running one; `undefined` (no header) means "the active one". */
  private target(streamId: string | undefined, what: 'update' | 'stop'): StreamSession {
    const session = this.session;
    if (!session) throw new NoActiveStreamError(what === 'update' ? 'No active stream to update' : 'No active stream to stop');
    if (streamId !== undefined && streamId !== session.streamId) {
      throw new StreamNotFoundError(`No stream with X-Stream-Id "${streamId}" is running; nothing was ${what === 'update' ? 'updated' : 'stopped'}`);
    }
    return session;
  }

  /** `streamId` is the X-Stream-Id header when sent (it wins over the body's gateway_request_id). */
  async start(req: StartRequest, streamId: string = req.gateway_request_id): Promise<StartResult> {
    // Validation first: a bad request is a 400 whatever the state, and starts nothing.
    const parsed = parseStartParams(req.params);
    assertBackendSupports(parsed.params, this.backend.capabilities); // output_schema needs a backend that can constrain decoding
    await this.waitUntilReady();
    if (this.claimed || this.session) throw new PipelineBusyError('Pipeline is still in use');
    this.claimed = true;
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
      session = this.factory(config);
      await session.start();
    } catch (err) {
      this.claimed = false;
      throw new AppError('stream_start_failed', errorMessage(err), { httpStatus: 400, cause: err });
    }
    this.session = session;
    this.config = config;
    this.claimed = false;
    metrics.activeStreams.set(1);
    this.log.info({ stream_id: config.streamId, ignored_params: parsed.ignored }, 'stream started');
    if (!config.dataUrl) this.log.warn({ stream_id: config.streamId }, 'no data_url in the start request: generated records will be dropped');
    // The one place the slot is freed, whatever ended the stream (stop, input end, error, shutdown).
    // It is the first reaction on `done`, so callers awaiting `done` see the slot already free.
    void session.done.then((end) => {
      if (end.error) this.state.noteStreamError(session.streamId, end.error.code, end.error.message);
      this.log.info({ stream_id: session.streamId, reason: end.reason, err: end.error?.message }, 'stream ended');
      if (this.session === session) {
        this.session = undefined;
        this.config = undefined;
        metrics.activeStreams.set(0);
      }
      void forgetStream(session.streamId);
    });
    return { session, ignored: parsed.ignored };
  }

  /** Validates against the parameters in force (or the defaults when idle) before the no-stream check, as PyTrickle. */
  update(raw: unknown, streamId?: string): { params: StreamParams; ignored: string[] } {
    const base = this.session?.params() ?? parseStartParams(undefined).params;
    // The session holds the kept unknown keys (HTTP and control-channel updates alike), so the
    // per-stream limits count both.
    const parsed = parseParamsUpdate(base, raw, this.session?.extraParams() ?? {});
    assertBackendSupports(parsed.params, this.backend.capabilities);
    const session = this.target(streamId, 'update');
    try {
      session.updateParams(parsed.params, parsed.changed, raw as Record<string, unknown>);
    } catch (err) {
      this.log.warn({ stream_id: session.streamId, err: errorMessage(err) }, 'parameter update failed');
      throw new AppError(errorCode(err), errorMessage(err), { httpStatus: 500, cause: err });
    }
    return { params: parsed.params, ignored: parsed.ignored };
  }

  async stop(streamId?: string): Promise<void> {
    const session = this.target(streamId, 'stop');
    await session.stop('stopped');
    await session.done;
  }

  /** Process shutdown: stop whatever runs, bounded by the caller's deadline. */
  async shutdown(): Promise<void> {
    const session = this.session;
    if (session) {
      await session.stop('shutdown');
      await session.done;
    }
  }
}
