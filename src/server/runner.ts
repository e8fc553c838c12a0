/**
 * The stream slot: at most one stream per runner (as PyTrickle), with the start/update/stop rules
 * of spec §4.3–§4.5 and its faults fixed:
 * - the slot is claimed synchronously, so of N concurrent starts exactly one wins (§6.2);
 * - a stream that ends on its own frees the slot at once, so /status and /health read IDLE (§6.3);
 * - a failing update answers an error and changes nothing; it never sets a sticky ERROR (§6.4).
 */
import { AppError, errorCode, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { parseParamsUpdate, parseStartParams, type StreamParams } from '../config/params.js';
import type { SessionFactory, StreamSession, StreamStartConfig } from '../pipeline/types.js';
import type { ModelBackend } from '../model/backend.js';
import { RunnerState } from './state.js';
import type { StartRequest } from './requests.js';
import { metrics, forgetStream } from '../metrics.js';

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

export interface StartResult {
  session: StreamSession;
  ignored: string[];
}

export class Runner {
  readonly state: RunnerState;
  private session: StreamSession | undefined;
  private config: StreamStartConfig | undefined;
  private claimed = false;

  constructor(
    private readonly backend: ModelBackend,
    private readonly factory: SessionFactory,
    private readonly log: Logger,
    private readonly startWaitMs = 120_000,
  ) {
    this.state = new RunnerState(
      () => backend.status(),
      () => (this.session || this.claimed ? 1 : 0),
    );
  }

  current(): { session: StreamSession; config: StreamStartConfig } | undefined {
    return this.session && this.config ? { session: this.session, config: this.config } : undefined;
  }

  /** Waits (bounded) for a loading backend, as PyTrickle awaits its startup task before a start. */
  private async waitUntilReady(): Promise<void> {
    const deadline = Date.now() + this.startWaitMs;
    while (this.backend.status().state === 'loading' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!this.state.ready()) {
      throw new PipelineBusyError('Pipeline is still initializing. Please wait for IDLE status.');
    }
  }

  async start(req: StartRequest): Promise<StartResult> {
    // Validation first: a bad request is a 400 whatever the state, and starts nothing.
    const parsed = parseStartParams(req.params);
    await this.waitUntilReady();
    if (this.claimed || this.session) throw new PipelineBusyError('Pipeline is still in use');
    this.claimed = true;
    const config: StreamStartConfig = {
      streamId: req.gateway_request_id,
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
  update(raw: unknown): { params: StreamParams; ignored: string[] } {
    const base = this.session?.params() ?? parseStartParams(undefined).params;
    const parsed = parseParamsUpdate(base, raw);
    const session = this.session;
    if (!session) throw new NoActiveStreamError('No active stream to update');
    try {
      session.updateParams(parsed.params, parsed.changed, raw as Record<string, unknown>);
    } catch (err) {
      this.log.warn({ stream_id: session.streamId, err: errorMessage(err) }, 'parameter update failed');
      throw new AppError(errorCode(err), errorMessage(err), { httpStatus: 500, cause: err });
    }
    return { params: parsed.params, ignored: parsed.ignored };
  }

  async stop(): Promise<void> {
    const session = this.session;
    if (!session) throw new NoActiveStreamError('No active stream to stop');
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
