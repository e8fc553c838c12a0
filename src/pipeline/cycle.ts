/**
 * Running one planned cycle (plan.ts makes the plan): `runCycle` sends the request, collects the
 * streamed answer, runs the optional correction pass, and returns the records to publish (a failed
 * cycle yields an `error` record, never nothing). Publish-time counters are stamped by whoever
 * publishes (records.ts `stampStat`), so nothing here calls back.
 */
import { errorCode, errorMessage, type ErrorCode } from '../errors.js';
import type { GenerateEvent, ModelBackend } from '../model/backend.js';
import { correctionPrompt, type HistoryEntry } from './context.js';
import { framesLimitedBy, type CyclePlan, type PlanResult } from './plan.js';
import { toUsage, type CorrectionRecord, type ErrorRecord, type GenerationRecord, type UnchangedRecord } from './records.js';
import type { PartialSink } from './partials.js';


export interface Collected {
  text: string;
  usage: { promptTokens?: number; completionTokens?: number };
  encodeMs: number;
  modelMs: number;
  firstTokenMs?: number;
  finishReason?: string;
  /** Wait for the shared backend (fair-scheduler.ts), when the request was scheduled. */
  queueMs?: number;
}

/** Drains a backend stream into its final answer. A stream that ends without `done` is a failure. */
export async function collect(events: AsyncIterable<GenerateEvent>, onText?: (soFar: string) => void): Promise<Collected> {
  let deltas = '';
  for await (const ev of events) {
    if (ev.type === 'delta') {
      deltas += ev.text;
      onText?.(deltas);
      continue;
    }
    const out: Collected = {
      text: ev.text ?? deltas,
      usage: ev.usage ?? {},
      encodeMs: ev.timings?.encodeMs ?? 0,
      modelMs: ev.timings?.modelMs ?? 0,
    };
    if (ev.timings?.firstTokenMs !== undefined) out.firstTokenMs = ev.timings.firstTokenMs;
    if (ev.finishReason !== undefined) out.finishReason = ev.finishReason;
    if (ev.timings?.queueMs !== undefined) out.queueMs = ev.timings.queueMs;
    return out;
  }
  throw Object.assign(new Error('the model stream ended without a final answer'), { code: 'engine_error' });
}

export interface RunContext {
  streamId: string;
  cycle: CycleRef;
  backend: ModelBackend;
  signal: AbortSignal;
  /** Earlier outputs for the correction pass (newest last), or undefined when it is off. */
  correctionHistory: HistoryEntry[] | undefined;
  startedAt: number;
  now?: () => number;
  /** Fed the answer so far while it streams (partial text); ended once the answer is complete or failed. */
  partials?: PartialSink;
}

export type CycleRecord = GenerationRecord | CorrectionRecord | ErrorRecord | UnchangedRecord;

export interface CycleResult {
  records: CycleRecord[];
  /** The text to remember for context (corrected when the correction pass ran). */
  remember?: HistoryEntry;
  outcome: 'ok' | 'error' | 'aborted';
  error?: { code: ErrorCode; message: string };
}

/** Identifies one cycle in its records: a UUID plus the stream's running count. */
export interface CycleRef {
  id: string;
  seq: number;
}

export function errorRecord(
  streamId: string,
  cycle: CycleRef,
  code: ErrorCode,
  message: string,
  extra: Partial<Pick<ErrorRecord, 'prompt' | 'window' | 'stats'>> = {},
  now = Date.now(),
): ErrorRecord {
  return { type: 'error', stream_id: streamId, timestamp_ms: Math.floor(now), cycle_id: cycle.id, cycle_seq: cycle.seq, ...extra, error: { code, message } };
}

/** The record of a cycle refused at planning (over budget): no model call was made. */
export function refusalRecord(
  streamId: string,
  cycle: CycleRef,
  refused: Extract<PlanResult, { kind: 'error' }>,
  prompt: string,
  skippedCycles: number,
): ErrorRecord {
  return errorRecord(streamId, cycle, refused.code, refused.message, {
    prompt,
    ...(refused.window ? { window: refused.window } : {}),
    stats: {
      skipped_cycles: skippedCycles,
      records_dropped: 0, // stamped by the data channel as it queues the record
      input_tokens: refused.estimate,
      frames_dropped_by_gating: refused.framesDropped,
      frames_dropped_by_engine_limit: refused.framesDroppedByEngineLimit,
    },
  });
}

export async function runCycle(plan: CyclePlan, ctx: RunContext): Promise<CycleResult> {
  const now = ctx.now ?? Date.now;
  const prompt = plan.request.prompt;
  let gen: Collected;
  try {
    gen = await collect(ctx.backend.generate({ ...plan.request, signal: ctx.signal }), ctx.partials && ((t) => ctx.partials!.text(t)));
    ctx.partials?.end();
  } catch (err) {
    ctx.partials?.end();
    const aborted = ctx.signal.aborted;
    const code = aborted ? 'cycle_aborted' : errorCode(err);
    const message = aborted ? 'the stream stopped while the model was answering' : errorMessage(err);
    return {
      outcome: aborted ? 'aborted' : 'error',
      error: { code, message },
      records: [
        errorRecord(ctx.streamId, ctx.cycle, code, message, {
          prompt,
          window: plan.window,
          stats: {
            // Stamped as the record is published: skips by the loop, drops by the data channel.
            skipped_cycles: 0,
            records_dropped: 0,
            input_tokens: plan.estimate,
            frames_dropped_by_gating: plan.framesDropped,
            frames_dropped_by_engine_limit: plan.framesDroppedByEngineLimit,
          },
        }, now()),
      ],
    };
  }
  const total = now() - ctx.startedAt;
  const gstats: GenerationRecord['stats'] = {
    frame_count: plan.frameCount,
    audio_duration_ms: plan.audioDurationMs,
    input_tokens: gen.usage.promptTokens ?? plan.estimate,
    max_new_tokens: plan.request.maxNewTokens,
    frames_dropped_by_gating: plan.framesDropped,
    frames_dropped_by_engine_limit: plan.framesDroppedByEngineLimit,
    skipped_cycles: 0,
    records_dropped: 0,
    timings_ms: { encode: round(gen.encodeMs), model: round(gen.modelMs), total: round(total) },
  };
  if (gen.firstTokenMs !== undefined) gstats.timings_ms.first_token = round(gen.firstTokenMs);
  if (gen.queueMs !== undefined) gstats.timings_ms.queue = round(gen.queueMs);
  const limitedBy = framesLimitedBy(plan);
  if (limitedBy) gstats.frames_limited_by = limitedBy;
  if (plan.audioDropped) gstats.audio_dropped_by_gating = true;
  if (plan.audioSilent) gstats.audio_silent = true;
  const generation: GenerationRecord = {
    type: 'generation',
    stream_id: ctx.streamId,
    timestamp_ms: Math.floor(now()),
    cycle_id: ctx.cycle.id,
    cycle_seq: ctx.cycle.seq,
    prompt,
    text: gen.text,
    window: plan.window,
    stats: gstats,
    usage: toUsage(gen.usage),
  };
  if (gen.finishReason !== undefined) generation.finish_reason = gen.finishReason;
  const records: CycleRecord[] = [generation];
  let remember: HistoryEntry = { cycleId: ctx.cycle.id, prompt, text: gen.text, windowEndMs: plan.window.end_ms };

  if (ctx.correctionHistory !== undefined && gen.text.trim() !== '') {
    const t0 = now();
    const cprompt = correctionPrompt(ctx.correctionHistory, remember);
    try {
      const corr = await collect(
        ctx.backend.generate({
          prompt: cprompt,
          images: [],
          maxNewTokens: plan.request.maxNewTokens,
          ...(plan.request.sampling ? { sampling: plan.request.sampling } : {}),
          signal: ctx.signal,
        }),
      );
      const correctMs = now() - t0;
      records.push({
        type: 'correction',
        stream_id: ctx.streamId,
        timestamp_ms: Math.floor(now()),
        cycle_id: ctx.cycle.id,
        cycle_seq: ctx.cycle.seq,
        history_len: ctx.correctionHistory.length,
        corrected_text: corr.text,
        window: plan.window,
        stats: {
          input_tokens: corr.usage.promptTokens ?? ctx.backend.countTextTokens(cprompt) + 10,
          max_new_tokens: plan.request.maxNewTokens,
          records_dropped: 0,
          timings_ms: { generate: round(gen.modelMs + gen.encodeMs), correct: round(correctMs), total: round(now() - ctx.startedAt) },
        },
        usage: toUsage(corr.usage),
      });
      if (corr.text.trim() !== '') remember = { ...remember, text: corr.text };
    } catch (err) {
      const aborted = ctx.signal.aborted;
      const code = aborted ? 'cycle_aborted' : errorCode(err);
      records.push(
        errorRecord(ctx.streamId, ctx.cycle, code, aborted ? 'the stream stopped during the correction pass' : `correction pass failed: ${errorMessage(err)}`, {}, now()),
      );
      return { records, remember, outcome: aborted ? 'aborted' : 'error', error: { code, message: errorMessage(err) } };
    }
  }
  return { records, remember, outcome: 'ok' };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
