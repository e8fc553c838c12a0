/**
 * The contract between the control API (src/server) and a running stream (src/pipeline/session.ts).
 * The server validates requests and owns the state machine; a session owns everything that moves.
 */
import type { StreamParams } from '../config/params.js';
import type { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ModelBackend } from '../model/backend.js';

export interface StreamUrls {
  subscribeUrl?: string;
  publishUrl?: string;
  dataUrl?: string;
  controlUrl?: string;
  eventsUrl?: string;
}

export interface StreamStartConfig extends StreamUrls {
  /** The gateway_request_id; used as stream_id in records, events, logs and metrics. */
  streamId: string;
  params: StreamParams;
  /** Unknown params keys, kept and passed along untouched. */
  extraParams: Record<string, unknown>;
}

export interface StreamEnd {
  /** Why it ended: 'stopped' (API), 'input_ended' (EOS/404 on input), 'error', 'shutdown'. */
  reason: 'stopped' | 'input_ended' | 'error' | 'shutdown';
  error?: AppError;
}

export interface StreamFps {
  ingress_video_fps: number;
  ingress_audio_fps: number;
  egress_video_fps: number;
  egress_audio_fps: number;
}

export interface StreamStatusSnapshot {
  stream_id: string;
  running: boolean;
  started_at_ms: number;
  fps: StreamFps;
  counters: Record<string, number>;
  params: StreamParams;
  /** 'none' when the start request had no data_url: records are generated but go nowhere. */
  data_channel: 'trickle' | 'none';
}

export interface StreamSession {
  readonly streamId: string;
  /** Starts trickle I/O in the background; resolves once started (not when the stream ends). */
  start(): Promise<void>;
  /** Parameters in force. */
  params(): StreamParams;
  /** Unknown params keys kept so far (start, HTTP and control-channel updates). */
  extraParams(): Record<string, unknown>;
  /**
   * Applies an already-validated update (from HTTP). `changed` lists the keys the caller sent;
   * `raw` is the caller's payload (its key names, and the validated values of known keys, bounded,
   * are echoed in the params_updated event; unknown keys' values never are).
   */
  updateParams(next: StreamParams, changed: string[], raw: Record<string, unknown>): void;
  /** Stops everything: aborts a running cycle, flushes queued records, closes channels. Idempotent. */
  stop(reason: StreamEnd['reason']): Promise<void>;
  /** Settles once the stream has fully ended, for any reason. Never rejects. */
  readonly done: Promise<StreamEnd>;
  status(): StreamStatusSnapshot;
}

export type SessionFactory = (config: StreamStartConfig) => StreamSession;

/** What a session is built with besides its start config: the shared backend and tuning bounds. */
export interface SessionDeps {
  backend: ModelBackend;
  logger?: Logger;
  /** Heartbeat (and status event) cadence; the gateway needs one at least every 30 s. */
  heartbeatMs?: number;
  /** How long the first record of an idle data channel waits for others to share its segment (default 0). */
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
  /** The ffmpeg binary the sampler decodes with (default `ffmpeg` on PATH). */
  ffmpegPath?: string;
  /**
   * A zero-byte data segment goes out when nothing was published on the data channel for this long
   * (default 60 s; 0 = never). go-livepeer sweeps a channel idle for 5 min, and the gateway then stops
   * the stream.
   */
  dataKeepaliveMs?: number;
}
