/**
 * The runner's state machine, as PyTrickle reports it (spec §4.9) minus its faults:
 * - LOADING until the model backend is ready; ERROR while it is failing (and back once it recovers);
 * - OK while a stream is active; IDLE otherwise;
 * - a stream that ended on its own, or a failed update, never leaves a sticky ERROR (spec §6.3, §6.4).
 * The internal state is derived on every read from the backend status and the active-stream slot, so
 * there is no flag to forget to clear.
 */
import type { BackendStatus } from '../model/backend.js';
import type { ErrorCode } from '../error-codes.js';

export type ReportedStatus = 'LOADING' | 'IDLE' | 'OK' | 'ERROR';

export interface PipelineStateObject {
  status: ReportedStatus;
  state: ReportedStatus;
  error_message: string | null;
  pipeline_ready: boolean;
  active_streams: number;
  startup_complete: boolean;
  pipeline_state: 'LOADING' | 'IDLE' | 'ERROR';
  additional_info: Record<string, unknown>;
}

export class RunnerState {
  private startupComplete = false;
  private fatal: string | undefined;
  private lastStreamError: { stream_id: string; code: ErrorCode; message: string; at_ms: number } | undefined;

  constructor(
    private readonly backendStatus: () => BackendStatus,
    private readonly activeStreams: () => number,
  ) {}

  /** Called once the backend reported ready for the first time. */
  markStartupComplete(): void {
    this.startupComplete = true;
  }

  /** A server-level fault that makes the runner unusable until cleared (not used for stream faults). */
  setFatal(message: string | undefined): void {
    this.fatal = message;
  }

  noteStreamError(streamId: string, code: ErrorCode, message: string): void {
    this.lastStreamError = { stream_id: streamId, code, message, at_ms: Date.now() };
  }

  private errorMessage(): string | undefined {
    // A load failure is recorded as fatal, but a backend that recovers anyway (it reports ready) wins.
    if (this.fatal && this.backendStatus().state !== 'ready') return this.fatal;
    const b = this.backendStatus();
    return b.state === 'error' ? (b.message ?? 'model backend failed') : undefined;
  }

  /** Ready to accept a stream: backend ready and no error. */
  ready(): boolean {
    return this.errorMessage() === undefined && this.backendStatus().state === 'ready';
  }

  reported(): ReportedStatus {
    if (this.errorMessage() !== undefined) return 'ERROR';
    if (this.activeStreams() > 0) return 'OK';
    if (this.backendStatus().state === 'ready') return 'IDLE';
    return 'LOADING';
  }

  snapshot(): PipelineStateObject {
    const status = this.reported();
    const err = this.errorMessage();
    const b = this.backendStatus();
    const internal = err !== undefined ? 'ERROR' : b.state === 'ready' ? 'IDLE' : 'LOADING';
    const info: Record<string, unknown> = { backend_state: b.state };
    if (b.message) info.backend_message = b.message;
    if (this.lastStreamError) info.last_stream_error = this.lastStreamError;
    return {
      status,
      state: status,
      error_message: err ?? null,
      pipeline_ready: this.ready(),
      active_streams: this.activeStreams(),
      startup_complete: this.startupComplete || b.state === 'ready',
      pipeline_state: internal,
      additional_info: info,
    };
  }
}
