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
import type { AudioChunk, SampledFrame } from '../media/types.js';
import type { ModelBackend } from '../model/backend.js';
import { systemClock, type Clock } from '../util/time.js';
import { MediaWindow } from './buffers.js';
import { ContentGate, type ContentCounters } from './content-gate.js';
import { DEFAULT_CORRECTION_HISTORY, OutputHistory } from './context.js';
import { errorRecord, refusalRecord, runCycle, type CycleRef } from './cycle.js';
import { CycleOutputs, type OutputCounters } from './outputs.js';
import { planCycle } from './plan.js';
import { stampStat, type DataRecord } from './records.js';
import { CycleSlot, StreamTimeScheduler } from './scheduler.js';
import { LoopStats, type LoopCounters } from './loop-stats.js';

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

export class GenerationLoop {
  private p: StreamParams;
  private readonly ports: LoopPorts;
  private readonly clock: Clock;
  private readonly media: MediaWindow;
  private readonly scheduler: StreamTimeScheduler;
  private readonly content: ContentGate;
  private readonly history = new OutputHistory();
  private readonly slot = new CycleSlot();
  /** Partial text, structured output and alert rules (issue 15). */
  private readonly outputs: CycleOutputs;
  private cycleSeq = 0;
  private inflight: { promise: Promise<void>; abort: AbortController } | undefined;
  private closed = false;
  /** What the loop measures (counters, cycle rate, last outcome): read by the session's status. */
  readonly stats: LoopStats;

  constructor(
    readonly streamId: string,
    params: StreamParams,
    ports: LoopPorts,
  ) {
    this.p = params;
    this.ports = ports;
    this.clock = ports.clock ?? systemClock;
    this.stats = new LoopStats(streamId, this.clock);
    this.media = new MediaWindow(params);
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
    const frames = this.media.frames;
    if (this.content.offerFrame(f, frames.size > 0).kind === 'duplicate') frames.replaceNewest(f);
    else frames.push(f);
    this.scheduler.observe(f.ptsMs, 'video');
    this.pollTriggers();
  }

  pushAudio(a: AudioChunk): void {
    if (this.closed) return;
    const ms = (a.samples.length / a.sampleRate) * 1000;
    this.followTimeline(a.startPtsMs, 'audio');
    this.media.audio.push(a);
    this.content.offerAudio(a);
    this.scheduler.observe(a.startPtsMs + ms, 'audio');
    this.pollTriggers();
  }

  /** New params in force; a shorter cadence may make a cycle due at once, and it sees them. */
  setParams(next: StreamParams): void {
    const prev = this.p;
    this.p = next;
    this.content.setParams(next);
    this.media.setParams(prev, next);
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

  counters(): LoopCounters & ContentCounters & OutputCounters {
    return { ...this.stats.counters(), ...this.content.counters(), ...this.outputs.counters() };
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
    this.stats.discontinuity();
    this.ports.log.info({ pts_ms: ptsMs, stream_time_ms: this.scheduler.streamTimeMs }, 'media timestamp discontinuity; buffers cleared');
    this.media.clear();
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
    if (d.skipped > 0) this.stats.skipped(d.skipped);
    if (d.launch) this.launch();
  }

  private launch(): void {
    const startedAt = this.clock.now();
    const historyN = this.p.context_history;
    const now = this.scheduler.streamTimeMs;
    if (now !== undefined) this.stats.agedOut(this.media.prune(now, this.p));
    const decision = this.content.beginCycle(now ?? 0, this.media.frames.snapshot(), Date.now());
    if (decision.kind === 'unchanged') {
      this.stats.unchanged();
      if (decision.record) this.ports.publish([decision.record]);
      return;
    }
    const trigger = decision.trigger;
    if (trigger !== 'interval' && now !== undefined) this.scheduler.reanchor(now);
    const backend = this.ports.backend;
    const planned = planCycle(
      { frames: decision.frames, audio: this.media.audio.snapshot() },
      { params: this.outputs.planParams(this.p), capabilities: backend.capabilities, countTextTokens: (t) => backend.countTextTokens(t), history: this.history.last(historyN) },
    );
    if (planned.kind === 'empty') {
      this.stats.empty();
      return;
    }
    const cycle: CycleRef = { id: randomUUID(), seq: ++this.cycleSeq };
    this.stats.started(planned.kind === 'plan' ? planned.plan : planned);
    this.content.started(cycle, planned.kind === 'plan' && planned.plan.frameCount > 0 ? decision.frames : []);
    if (planned.kind === 'error') {
      this.content.finished(cycle, false);
      this.stats.refused();
      this.ports.reportError(planned.code, planned.message, { cycle_id: cycle.id });
      const rec = [refusalRecord(this.streamId, cycle, planned, this.p.prompt, this.stats.takeSkipped())];
      this.content.stamp(rec, trigger);
      this.ports.publish(rec);
      return;
    }
    const plan = planned.plan;
    this.outputs.shape(plan);
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
      if (first) stampStat(first, 'skipped_cycles', this.stats.takeSkipped());
      this.content.stamp(result.records, trigger);
      this.content.finished(cycle, result.outcome === 'ok');
      this.ports.publish([...result.records, ...finished.alerts]);
      if (result.remember) this.history.add(result.remember);
      this.stats.finished(result.outcome, startedAt, result.records.some((r) => r.type === 'correction'));
      if (result.outcome === 'error' && result.error) this.ports.reportError(result.error.code, result.error.message, { cycle_id: cycle.id });
    })()
      .catch((err: unknown) => {
        // runCycle turns model failures into records; reaching here is a bug, still never silent.
        this.stats.internalError();
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
