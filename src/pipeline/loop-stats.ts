/**
 * What the generation loop measures about itself, in one owner: its counters (cycles started,
 * completed, failed, aborted, skipped, empty; frames dropped by gating, by the engine limit and by
 * age; corrections; discontinuities), the skips waiting to be reported on the next record, the cycle
 * rate, the last outcome and when output last came, and the per-stream cycle metrics. The loop tells
 * it what happened (one call per event); each event is counted once, here, and nowhere else.
 */
import { metrics } from '../metrics.js';
import type { Clock } from '../util/time.js';
import type { CycleResult } from './cycle.js';
import { RateMeter } from './status.js';

export interface LoopCounters {
  cycles_started: number;
  cycles_completed: number;
  cycles_failed: number;
  cycles_aborted: number;
  cycles_skipped: number;
  cycles_empty: number;
  corrections: number;
  frames_dropped_by_gating: number;
  frames_dropped_by_engine_limit: number;
  frames_aged_out: number;
  media_discontinuities: number;
}

export class LoopStats {
  private readonly c: LoopCounters = {
    cycles_started: 0,
    cycles_completed: 0,
    cycles_failed: 0,
    cycles_aborted: 0,
    cycles_skipped: 0,
    cycles_empty: 0,
    corrections: 0,
    frames_dropped_by_gating: 0,
    frames_dropped_by_engine_limit: 0,
    frames_aged_out: 0,
    media_discontinuities: 0,
  };
  private readonly rate = new RateMeter(30_000);
  private skippedPending = 0;
  private ok: boolean | undefined;
  private outputAt: number | undefined;

  constructor(
    private readonly streamId: string,
    private readonly clock: Clock,
  ) {}

  counters(): LoopCounters {
    return { ...this.c };
  }

  get lastCycleOk(): boolean | undefined {
    return this.ok;
  }

  get lastOutputAtMs(): number | undefined {
    return this.outputAt;
  }

  cyclesPerS(): number {
    return this.rate.rate();
  }

  discontinuity(): void {
    this.c.media_discontinuities++;
  }

  agedOut(frames: number): void {
    this.c.frames_aged_out += frames;
  }

  /** Due points that passed while a cycle ran; reported on the next record that carries `skipped_cycles`. */
  skipped(n: number): void {
    this.skippedPending += n;
    this.c.cycles_skipped += n;
    metrics.cycles.inc({ stream_id: this.streamId, outcome: 'skipped' }, n);
  }

  /** The skips not yet reported, handed to the record that reports them (then zero). */
  takeSkipped(): number {
    const n = this.skippedPending;
    this.skippedPending = 0;
    return n;
  }

  empty(): void {
    this.c.cycles_empty++;
    metrics.cycles.inc({ stream_id: this.streamId, outcome: 'empty' });
  }

  unchanged(): void {
    metrics.cycles.inc({ stream_id: this.streamId, outcome: 'unchanged' });
  }

  /** A cycle got a number: it was planned (into a request, or into a refusal). */
  started(gated: { framesDropped: number; framesDroppedByEngineLimit: number }): void {
    this.c.cycles_started++;
    this.c.frames_dropped_by_gating += gated.framesDropped;
    this.c.frames_dropped_by_engine_limit += gated.framesDroppedByEngineLimit;
  }

  /** How a started cycle's request ended; `startedAt` on the loop's clock. */
  finished(outcome: CycleResult['outcome'], startedAt: number, corrected: boolean): void {
    if (outcome === 'ok') {
      this.c.cycles_completed++;
      this.ok = true;
      this.outputAt = this.clock.now();
      this.rate.mark();
      if (corrected) this.c.corrections++;
    } else if (outcome === 'aborted') {
      this.c.cycles_aborted++;
    } else {
      this.c.cycles_failed++;
      this.ok = false;
    }
    metrics.cycles.inc({ stream_id: this.streamId, outcome });
    metrics.cycleLatency.observe({ stream_id: this.streamId }, (this.clock.now() - startedAt) / 1000);
  }

  /** A cycle that ended in a bug of ours (runCycle threw): failed, never silent, not a model outcome. */
  internalError(): void {
    this.c.cycles_failed++;
  }

  /** A cycle refused at planning (over budget): failed, with no model call and no latency. */
  refused(): void {
    this.c.cycles_failed++;
    this.ok = false;
    metrics.cycles.inc({ stream_id: this.streamId, outcome: 'error' });
  }
}
