/**
 * Per-stream counters, rates and the `status` event (queue `ai_stream_status`). The event follows
 * ai-runner's PipelineStatus shape (spec §3.4: state, input_status, inference_status, ms times) so the
 * gateway's stream status document reads the same as for other live pipelines, plus our counters.
 */
import type { StreamParams } from '../config/params.js';
import type { ErrorCode } from '../error-codes.js';

/** Events per second over a sliding wall-clock window; memory bounded by `maxSamples`. */
export class RateMeter {
  private times: number[] = [];
  constructor(
    private readonly windowMs = 5000,
    private readonly maxSamples = 1024,
  ) {}

  mark(now = Date.now()): void {
    this.times.push(now);
    if (this.times.length > this.maxSamples) this.times.splice(0, this.times.length - this.maxSamples);
  }

  rate(now = Date.now()): number {
    const from = now - this.windowMs;
    let i = 0;
    while (i < this.times.length && this.times[i]! < from) i++;
    if (i > 0) this.times.splice(0, i);
    if (this.times.length === 0) return 0;
    // Over the span actually covered when the window is not full yet (a stream 1 s old).
    const span = Math.max(1000, Math.min(this.windowMs, now - this.times[0]!));
    return Math.round((this.times.length / span) * 1000 * 100) / 100;
  }
}

export type PipelineState = 'INITIALIZING' | 'ONLINE' | 'DEGRADED_INPUT' | 'DEGRADED_INFERENCE' | 'ERROR' | 'OFFLINE';

export interface StatusInputs {
  streamId: string;
  running: boolean;
  /** Why the stream ended, once it has. */
  ended: 'stopped' | 'input_ended' | 'error' | 'shutdown' | undefined;
  startedAtMs: number;
  lastInputAtMs: number | undefined;
  lastOutputAtMs: number | undefined;
  lastCycleOk: boolean | undefined;
  lastParamsUpdateAtMs: number | undefined;
  lastError: { atMs: number; code: ErrorCode; message: string } | undefined;
  inputFps: number;
  cyclesPerS: number;
  params: StreamParams;
  counters: Record<string, number>;
  /** Input older than this marks the stream DEGRADED_INPUT. */
  inputStaleMs?: number;
}

export function pipelineState(s: StatusInputs, now = Date.now()): PipelineState {
  if (!s.running) return s.ended === 'error' ? 'ERROR' : 'OFFLINE';
  if (s.lastInputAtMs === undefined) return 'INITIALIZING';
  if (now - s.lastInputAtMs > (s.inputStaleMs ?? 5000)) return 'DEGRADED_INPUT';
  if (s.lastCycleOk === false) return 'DEGRADED_INFERENCE';
  return 'ONLINE';
}

export function statusEventFields(s: StatusInputs, now = Date.now()): Record<string, unknown> {
  return {
    pipeline: 'gemma3n',
    stream_id: s.streamId,
    start_time: s.startedAtMs,
    state: pipelineState(s, now),
    last_state_update_time: now,
    input_status: { last_input_time: s.lastInputAtMs ?? null, fps: s.inputFps },
    inference_status: {
      last_output_time: s.lastOutputAtMs ?? null,
      fps: s.cyclesPerS,
      last_params_update_time: s.lastParamsUpdateAtMs ?? null,
      last_params: s.params,
      last_error_time: s.lastError?.atMs ?? null,
      last_error: s.lastError ? `${s.lastError.code}: ${s.lastError.message}` : null,
    },
    counters: { ...s.counters },
  };
}
