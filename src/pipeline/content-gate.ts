/**
 * Content-aware cycles for one stream (`content_aware`): what the generation loop asks before it
 * buffers a frame and before it runs a cycle, so the model is spent only when the stream has
 * something new to say. It owns the judgement, the loop owns the buffers and the cycles:
 *   - offerFrame: a frame within `duplicate_threshold` (signature distance, src/media/signature.ts)
 *     of the newest kept frame is a near-duplicate: it takes that frame's place instead of adding one
 *     (a static scene holds one frame, not 30); a frame at least `scene_change_threshold` from the one
 *     sampled before it is a scene cut, an event for the trigger policy (triggers.ts);
 *   - offerAudio: audible audio (RMS ≥ `silence_rms`) marks the span as not silent; the end of a sound
 *     burst (src/media/audio-activity.ts) is an event;
 *   - beginCycle: a cycle due by the clock whose new frames all match the last cycle's and whose audio
 *     was silent is `unchanged` (no model call; a small record or nothing); otherwise it runs with the
 *     frames since the last cycle (the newest one alone when they are all duplicates of what it saw);
 *   - stamp: a cycle's records say why it ran (`trigger`), and the first generation since counts the
 *     duplicates dropped and the unchanged cycles skipped meanwhile.
 * With `content_aware` off every frame is kept, every cycle runs with all buffered frames and is an
 * `interval` cycle: the fixed cadence of before.
 *
 * Promises: pure (stream times and the wall-clock timestamp are arguments), O(1) per frame and chunk
 * beyond the signature distance; a timeline discontinuity (clear) forgets everything it compared.
 */
import type { StreamParams } from '../config/params.js';
import { AudioActivity } from '../media/audio-activity.js';
import { collapseDuplicates, signatureDistance, type FrameSignature } from '../media/signature.js';
import type { AudioChunk, SampledFrame } from '../media/types.js';
import { rms } from './buffers.js';
import type { CycleRecord, CycleRef } from './cycle.js';
import type { CycleTrigger, UnchangedRecord } from './records.js';
import { TriggerPolicy, type TriggerPoll } from './triggers.js';

export type ContentParams = Pick<
  StreamParams,
  | 'content_aware'
  | 'duplicate_threshold'
  | 'scene_change_threshold'
  | 'speech_rms'
  | 'speech_end_silence_s'
  | 'min_trigger_spacing_s'
  | 'unchanged_output'
  | 'silence_rms'
  | 'modality'
>;

/** `duplicate`: the frame replaces the newest buffered one instead of being added. */
export type FrameVerdict = { kind: 'keep' } | { kind: 'duplicate' };

export type CycleDecision =
  | { kind: 'run'; trigger: CycleTrigger; frames: SampledFrame[]; eventPtsMs?: number }
  /** Not run; `record` is what to publish (undefined with `unchanged_output: "none"`). */
  | { kind: 'unchanged'; record: UnchangedRecord | undefined };

export interface ContentCounters {
  frames_dropped_as_duplicate: number;
  cycles_unchanged: number;
  scene_changes: number;
  speech_ends: number;
  cycles_triggered_scene_change: number;
  cycles_triggered_speech_end: number;
}

interface LastCycle {
  ref: CycleRef;
  /** Signature and pts of the newest frame it was given (undefined: it had none). */
  sig: FrameSignature | undefined;
  newestPtsMs: number;
  ok: boolean | undefined;
}

export class ContentGate {
  private p: ContentParams;
  private readonly triggers: TriggerPolicy;
  private readonly activity: AudioActivity;
  /** Signature of the newest kept frame when it was kept (duplicates replace it but do not move this). */
  private anchor: FrameSignature | undefined;
  private prevSig: FrameSignature | undefined;
  private audible = false;
  private last: LastCycle | undefined;
  private sinceMs: number | undefined;
  private unchangedRun = 0;
  private pendingUnchanged = 0;
  private pendingDuplicates = 0;
  private readonly c: ContentCounters = {
    frames_dropped_as_duplicate: 0,
    cycles_unchanged: 0,
    scene_changes: 0,
    speech_ends: 0,
    cycles_triggered_scene_change: 0,
    cycles_triggered_speech_end: 0,
  };

  constructor(
    private readonly streamId: string,
    params: ContentParams,
  ) {
    this.p = params;
    this.triggers = new TriggerPolicy(params.min_trigger_spacing_s * 1000);
    this.activity = new AudioActivity({ onRms: params.speech_rms, endSilenceMs: params.speech_end_silence_s * 1000 });
  }

  get enabled(): boolean {
    return this.p.content_aware;
  }

  counters(): ContentCounters {
    return { ...this.c };
  }

  setParams(next: ContentParams): void {
    const toggled = next.content_aware !== this.p.content_aware;
    this.p = next;
    this.triggers.setMinSpacing(next.min_trigger_spacing_s * 1000);
    this.activity.setOptions({ onRms: next.speech_rms, endSilenceMs: next.speech_end_silence_s * 1000 });
    if (toggled) this.clear();
  }

  /** A new timeline (or the mode toggled): nothing seen before is compared with what follows. */
  clear(): void {
    this.anchor = undefined;
    this.prevSig = undefined;
    this.audible = false;
    this.last = undefined;
    this.sinceMs = undefined;
    this.unchangedRun = 0;
    this.activity.reset();
    this.triggers.reset();
  }

  /** Judges a sampled frame before it is buffered; `buffered`: the buffer holds a frame it may replace. */
  offerFrame(f: SampledFrame, buffered: boolean): FrameVerdict {
    const sig = f.signature;
    if (!this.p.content_aware || !sig) return { kind: 'keep' };
    if (this.prevSig && signatureDistance(this.prevSig, sig) >= this.p.scene_change_threshold) {
      this.c.scene_changes++;
      this.triggers.event('scene_change', f.ptsMs);
    }
    this.prevSig = sig;
    if (buffered && this.anchor && signatureDistance(this.anchor, sig) <= this.p.duplicate_threshold) {
      this.c.frames_dropped_as_duplicate++;
      this.pendingDuplicates++;
      return { kind: 'duplicate' };
    }
    this.anchor = sig;
    return { kind: 'keep' };
  }

  offerAudio(a: AudioChunk): void {
    if (!this.p.content_aware) return;
    if (rms(a.samples) >= this.p.silence_rms) this.audible = true;
    for (const ev of this.activity.push(a.startPtsMs, a.samples)) {
      if (ev.kind !== 'offset') continue;
      this.c.speech_ends++;
      this.triggers.event('speech_end', ev.ptsMs);
    }
  }

  /** Whether an event makes a cycle due at stream time `nowMs` (always `none` when off). */
  poll(nowMs: number): TriggerPoll {
    if (!this.p.content_aware) return { kind: 'none' };
    return this.triggers.poll(nowMs);
  }

  /**
   * A cycle is due at stream time `nowMs` with `frames` buffered (oldest first): run it (with which
   * frames, named after which trigger) or skip it as unchanged. `wallMs` stamps an unchanged record.
   */
  beginCycle(nowMs: number, frames: SampledFrame[], wallMs: number): CycleDecision {
    if (!this.p.content_aware) return { kind: 'run', trigger: 'interval', frames };
    const since = this.sinceMs;
    this.sinceMs = nowMs;
    const audible = this.audible;
    this.audible = false;
    const pending = this.triggers.pendingEvent;
    const last = this.last;
    const fresh = last ? frames.filter((f) => f.ptsMs > last.newestPtsMs) : frames;
    if (!pending && last?.ok === true) {
      const videoSame = this.p.modality === 'audio' || fresh.every((f) => this.sameAs(f, last.sig));
      const audioSilent = this.p.modality === 'vision' || !audible;
      if (videoSame && audioSilent) {
        this.c.cycles_unchanged++;
        this.pendingUnchanged++;
        this.unchangedRun++;
        if (this.p.unchanged_output === 'none') return { kind: 'unchanged', record: undefined };
        return {
          kind: 'unchanged',
          record: {
            type: 'unchanged',
            stream_id: this.streamId,
            timestamp_ms: Math.floor(wallMs),
            cycle_id: last.ref.id,
            cycle_seq: last.ref.seq,
            window: { start_ms: Math.round(since ?? last.newestPtsMs), end_ms: Math.round(nowMs) },
            stats: { unchanged_cycles: this.unchangedRun, records_dropped: 0 },
          },
        };
      }
    }
    const started = this.triggers.launched(nowMs);
    if (started.trigger === 'scene_change') this.c.cycles_triggered_scene_change++;
    if (started.trigger === 'speech_end') this.c.cycles_triggered_speech_end++;
    this.unchangedRun = 0;
    // The frames the last cycle did not see; duplicates of its newest frame say nothing new.
    const news = collapseDuplicates(last ? fresh.filter((f) => !this.sameAs(f, last.sig)) : fresh, this.p.duplicate_threshold);
    // Frames buffered before the mode was on (or judged against an older anchor) collapse here too.
    this.c.frames_dropped_as_duplicate += news.dropped;
    this.pendingDuplicates += news.dropped;
    const offered = news.frames.length > 0 ? news.frames : frames.slice(-1);
    const decision: CycleDecision = { kind: 'run', trigger: started.trigger, frames: offered };
    if (started.eventPtsMs !== undefined) decision.eventPtsMs = started.eventPtsMs;
    return decision;
  }

  /** The cycle that `beginCycle` let run has started as `ref` with these frames (newest last). */
  started(ref: CycleRef, frames: SampledFrame[]): void {
    if (!this.p.content_aware) return;
    const newest = frames.at(-1);
    this.last = { ref, sig: newest?.signature, newestPtsMs: newest?.ptsMs ?? Number.NEGATIVE_INFINITY, ok: undefined };
  }

  /** The started cycle ended; only a successful one is something later cycles can be "unchanged" from. */
  finished(ref: CycleRef, ok: boolean): void {
    if (this.last?.ref.id === ref.id) this.last.ok = ok;
  }

  /** Says why a cycle ran on its records; the first generation carries the counts since the last one. */
  stamp(records: CycleRecord[], trigger: CycleTrigger): void {
    let counted = false;
    for (const r of records) {
      if (r.type !== 'generation' && r.type !== 'error') continue;
      r.trigger = trigger;
      if (r.type !== 'generation' || counted) continue;
      counted = true;
      r.stats.frames_dropped_as_duplicate = this.pendingDuplicates;
      r.stats.unchanged_cycles = this.pendingUnchanged;
      this.pendingDuplicates = 0;
      this.pendingUnchanged = 0;
    }
  }

  /** Same picture as `sig` (a frame without a signature never is: it cannot be judged). */
  private sameAs(f: SampledFrame, sig: FrameSignature | undefined): boolean {
    if (!f.signature || !sig) return false;
    return signatureDistance(f.signature, sig) <= this.p.duplicate_threshold;
  }
}

