/**
 * The generation loop of one stream, with no I/O and no timers of its own: rolling frame/audio
 * buffers that follow stream time, the stream-time trigger, the single cycle in flight (one catch-up,
 * further due points skipped and counted), planning and running each cycle against the backend, and
 * the loop's own counters. Everything it touches from outside comes through `LoopPorts` — the model,
 * where records go, where errors are reported, and the clock — so its cadence, skip, abort-at-stop
 * and drain-at-end behaviour is testable with synthetic frames at chosen pts and a scripted backend.
 *
 * Promises: a timestamp that starts a new timeline clears both buffers before the new media goes in
 * (no window spans the jump); stale media ages out by stream time before every cycle; after close()
 * no cycle starts; settle() waits for the running cycle (aborting it after a grace) and is bounded.
 */
import { randomUUID } from 'node:crypto';
import type { StreamParams } from '../config/params.js';
import { AppError, errorMessage } from '../errors.js';
import type { ErrorCode } from '../error-codes.js';
import type { Logger } from '../log.js';
import { metrics } from '../metrics.js';
import type { AudioChunk, SampledFrame } from '../media/types.js';
import type { ModelBackend } from '../model/backend.js';
import { systemClock, type Clock } from '../util/time.js';
import { AudioBuffer, FrameBuffer } from './buffers.js';
import { ContentGate, type ContentCounters } from './content-gate.js';
import { DEFAULT_CORRECTION_HISTORY, OutputHistory } from './context.js';
import { errorRecord, runCycle, type CycleRef } from './cycle.js';
import { CycleOutputs, type OutputCounters } from './outputs.js';
import { planCycle } from './plan.js';
import { stampStat, type DataRecord } from './records.js';
import { CycleSlot, StreamTimeScheduler } from './scheduler.js';
import { RateMeter } from './status.js';

/** How long media stays in the buffers, in stream time: the longest span a cycle's window may cover. */
export function mediaMaxAgeMs(p: Pick<StreamParams, 'generate_every_s' | 'audio_window_s' | 'max_frames' | 'target_fps'>): number {
  const framesSpan = p.target_fps > 0 ? (p.max_frames / p.target_fps) * 1000 : 0;
  return Math.max(p.generate_every_s * 1000, p.audio_window_s * 1000, framesSpan);
}

export interface LoopPorts {
  backend: ModelBackend;
  /** Records of a cycle, in order, as they are ready (partials while the answer streams, then the rest). */
  publish(records: DataRecord[]): void;
  /** An alert rule fired (outputs.ts): the fields of its `alert` event. */
  alert?(fields: Record<string, unknown>): void;
  /** A failure the stream reports (events channel, last error, log): called once per failure. */
  reportError(code: ErrorCode, message: string, fields?: Record<string, unknown>): void;
  log: Logger;
  clock?: Clock;
}

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

export class GenerationLoop {
  private p: StreamParams;
  private readonly ports: LoopPorts;
  private readonly clock: Clock;
  private readonly frames: FrameBuffer;
  private readonly audio: AudioBuffer;
  private readonly scheduler: StreamTimeScheduler;
  private readonly content: ContentGate;
  private readonly history = new OutputHistory();
  private readonly slot = new CycleSlot();
  private readonly cycleRate = new RateMeter(30_000);
  /** Partial text, structured output and alert rules (issue 15). */
  private readonly outputs: CycleOutputs;
  private cycleSeq = 0;
  private inflight: { promise: Promise<void>; abort: AbortController } | undefined;
  private skippedPending = 0;
  private closed = false;
  private lastOk: boolean | undefined;
  private lastOutputAt: number | undefined;
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

  constructor(
    readonly streamId: string,
    params: StreamParams,
    ports: LoopPorts,
  ) {
    this.p = params;
    this.ports = ports;
    this.clock = ports.clock ?? systemClock;
    this.frames = new FrameBuffer(params.max_frames);
    this.audio = new AudioBuffer(params.audio_window_s);
    this.content = new ContentGate(streamId, params);
    this.scheduler = new StreamTimeScheduler({
      intervalMs: params.generate_every_s * 1000,
      onDue: (_pts, count) => this.onDue(count),
    });
    this.outputs = new CycleOutputs(params, {
      streamId,
      capabilities: ports.backend.capabilities,
      clock: this.clock,
      publishPartial: (r) => this.ports.publish([r]),
      ...(ports.alert ? { alert: ports.alert } : {}),
    });
  }

  pushFrame(f: SampledFrame): void {
    if (this.closed) return;
    this.followTimeline(f.ptsMs, 'video');
    if (this.content.offerFrame(f, this.frames.size > 0).kind === 'duplicate') this.frames.replaceNewest(f);
    else this.frames.push(f);
    this.scheduler.observe(f.ptsMs, 'video');
    this.pollTriggers();
  }

  pushAudio(a: AudioChunk): void {
    if (this.closed) return;
    const ms = (a.samples.length / a.sampleRate) * 1000;
    this.followTimeline(a.startPtsMs, 'audio');
    this.audio.push(a);
    this.content.offerAudio(a);
    this.scheduler.observe(a.startPtsMs + ms, 'audio');
    this.pollTriggers();
  }

  /** New params in force; a shorter cadence may make a cycle due at once, and it sees them. */
  setParams(next: StreamParams): void {
    const prev = this.p;
    this.p = next;
    this.content.setParams(next);
    if (next.max_frames !== prev.max_frames) this.frames.resize(next.max_frames);
    if (next.audio_window_s !== prev.audio_window_s) this.audio.resize(next.audio_window_s);
    if (next.generate_every_s !== prev.generate_every_s) this.scheduler.setInterval(next.generate_every_s * 1000);
    this.outputs.setParams(next);
  }

  /** No cycle starts from now on (the running one, if any, is left to settle()). */
  close(): void {
    this.closed = true;
  }

  get inFlight(): boolean {
    return this.inflight !== undefined;
  }

  get lastCycleOk(): boolean | undefined {
    return this.lastOk;
  }

  get lastOutputAtMs(): number | undefined {
    return this.lastOutputAt;
  }

  cyclesPerS(): number {
    return this.cycleRate.rate();
  }

  counters(): LoopCounters & ContentCounters & OutputCounters {
    return { ...this.c, ...this.content.counters(), ...this.outputs.counters() };
  }

  /**
   * Waits for the running cycle, aborting it after `graceMs` (0 = abort at once); an aborted request
   * that does not settle within `abortWaitMs` is abandoned (logged).
   */
  async settle(graceMs: number, abortWaitMs: number): Promise<void> {
    const cur = this.inflight;
    if (!cur) return;
    const stopped = (): AppError => new AppError('stream_stopped', 'stream stopped');
    if (graceMs > 0) {
      const grace = new AbortController();
      await Promise.race([cur.promise, this.clock.delay(graceMs, grace.signal)]);
      grace.abort();
    }
    cur.abort.abort(stopped());
    const wait = new AbortController();
    await Promise.race([cur.promise, this.clock.delay(abortWaitMs, wait.signal)]);
    wait.abort();
    if (this.inflight === cur) {
      this.ports.log.warn('model request did not settle after abort; abandoning it');
      this.inflight = undefined;
      this.slot.finished();
    }
  }

  // ---- internals ----

  private followTimeline(ptsMs: number, track: 'video' | 'audio'): void {
    if (!this.scheduler.breaksWindow(ptsMs, track)) return;
    this.c.media_discontinuities++;
    this.ports.log.info({ pts_ms: ptsMs, stream_time_ms: this.scheduler.streamTimeMs }, 'media timestamp discontinuity; buffers cleared');
    this.frames.clear();
    this.audio.clear();
    this.content.clear();
  }

  /** A content-aware event (scene cut, end of a sound burst) may make a cycle due before the clock. */
  private pollTriggers(): void {
    const now = this.scheduler.streamTimeMs;
    if (this.closed || now === undefined || this.content.poll(now).kind !== 'due') return;
    if (!this.slot.inFlight) this.launch();
    else if (!this.slot.hasPending) this.slot.due(1); // runs as the catch-up when the current cycle ends
  }

  private onDue(count: number): void {
    if (this.closed) return;
    const d = this.slot.due(count);
    if (d.skipped > 0) this.skip(d.skipped);
    if (d.launch) this.launch();
  }

  private skip(n: number): void {
    this.skippedPending += n;
    this.c.cycles_skipped += n;
    metrics.cycles.inc({ stream_id: this.streamId, outcome: 'skipped' }, n);
  }

  private takeSkipped(): number {
    const n = this.skippedPending;
    this.skippedPending = 0;
    return n;
  }

  private launch(): void {
    const startedAt = this.clock.now();
    const historyN = this.p.context_history;
    const now = this.scheduler.streamTimeMs;
    if (now !== undefined) {
      const maxAge = mediaMaxAgeMs(this.p);
      this.c.frames_aged_out += this.frames.prune(now, maxAge);
      this.audio.prune(now, maxAge);
    }
    const decision = this.content.beginCycle(now ?? 0, this.frames.snapshot(), Date.now());
    if (decision.kind === 'unchanged') {
      metrics.cycles.inc({ stream_id: this.streamId, outcome: 'unchanged' });
      if (decision.record) this.ports.publish([decision.record]);
      return;
    }
    const trigger = decision.trigger;
    if (trigger !== 'interval' && now !== undefined) this.scheduler.reanchor(now);
    const backend = this.ports.backend;
    const planned = planCycle(
      { frames: decision.frames, audio: this.audio.snapshot() },
      { params: this.outputs.planParams(this.p), capabilities: backend.capabilities, countTextTokens: (t) => backend.countTextTokens(t), history: this.history.last(historyN) },
    );
    if (planned.kind === 'empty') {
      this.c.cycles_empty++;
      metrics.cycles.inc({ stream_id: this.streamId, outcome: 'empty' });
      return;
    }
    const cycle: CycleRef = { id: randomUUID(), seq: ++this.cycleSeq };
    this.c.cycles_started++;
    this.content.started(cycle, planned.kind === 'plan' && planned.plan.frameCount > 0 ? decision.frames : []);
    if (planned.kind === 'error') {
      this.content.finished(cycle, false);
      this.c.cycles_failed++;
      this.lastOk = false;
      this.c.frames_dropped_by_gating += planned.framesDropped;
      this.c.frames_dropped_by_engine_limit += planned.framesDroppedByEngineLimit;
      metrics.cycles.inc({ stream_id: this.streamId, outcome: 'error' });
      this.ports.reportError(planned.code, planned.message, { cycle_id: cycle.id });
      const rec = [
        errorRecord(this.streamId, cycle, planned.code, planned.message, {
          prompt: this.p.prompt,
          ...(planned.window ? { window: planned.window } : {}),
          stats: {
            skipped_cycles: this.takeSkipped(),
            records_dropped: 0, // stamped by the data channel as it queues the record
            input_tokens: planned.estimate,
            frames_dropped_by_gating: planned.framesDropped,
            frames_dropped_by_engine_limit: planned.framesDroppedByEngineLimit,
          },
        }),
      ];
      this.content.stamp(rec, trigger);
      this.ports.publish(rec);
      return;
    }
    const plan = planned.plan;
    this.outputs.shape(plan);
    this.c.frames_dropped_by_gating += plan.framesDropped;
    this.c.frames_dropped_by_engine_limit += plan.framesDroppedByEngineLimit;
    const abort = new AbortController();
    const correctionN = historyN > 0 ? historyN : DEFAULT_CORRECTION_HISTORY;
    const promise = (async () => {
      const partials = this.outputs.partialsFor(cycle);
      const finished = this.outputs.finish(
        cycle,
        await runCycle(plan, {
          streamId: this.streamId,
          cycle,
          backend,
          signal: abort.signal,
          correctionHistory: this.p.correction_enabled && this.outputs.correctionAllowed ? this.history.last(correctionN) : undefined,
          startedAt,
          ...(partials ? { partials } : {}),
        }),
      );
      const result = finished.result;
      // Skips since the last record go on this cycle's first record that reports them.
      const first = result.records.find((r) => r.stats && 'skipped_cycles' in r.stats);
      if (first) stampStat(first, 'skipped_cycles', this.takeSkipped());
      this.content.stamp(result.records, trigger);
      this.content.finished(cycle, result.outcome === 'ok');
      this.ports.publish([...result.records, ...finished.alerts]);
      if (result.remember) this.history.add(result.remember);
      const outcome = result.outcome;
      if (outcome === 'ok') {
        this.c.cycles_completed++;
        this.lastOk = true;
        this.lastOutputAt = this.clock.now();
        this.cycleRate.mark();
        if (result.records.some((r) => r.type === 'correction')) this.c.corrections++;
      } else if (outcome === 'aborted') {
        this.c.cycles_aborted++;
      } else {
        this.c.cycles_failed++;
        this.lastOk = false;
        if (result.error) this.ports.reportError(result.error.code, result.error.message, { cycle_id: cycle.id });
      }
      metrics.cycles.inc({ stream_id: this.streamId, outcome });
      metrics.cycleLatency.observe({ stream_id: this.streamId }, (this.clock.now() - startedAt) / 1000);
    })()
      .catch((err: unknown) => {
        // runCycle turns model failures into records; reaching here is a bug, still never silent.
        this.c.cycles_failed++;
        this.ports.reportError('internal', errorMessage(err), { cycle_id: cycle.id });
        this.ports.publish([errorRecord(this.streamId, cycle, 'internal', errorMessage(err))]);
      })
      .finally(() => {
        if (this.inflight?.promise !== promise) return;
        this.inflight = undefined;
        // A due point that passed meanwhile runs now.
        if (this.slot.finished() && !this.closed) this.launch();
      });
    this.inflight = { promise, abort };
    this.slot.started();
  }
}
