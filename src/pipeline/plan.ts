/**
 * Planning one cycle (pure): media snapshot + parameters + backend capabilities → the GenerateRequest,
 * after modality, silence and token gating (with the token costs the backend declares); or an error
 * when nothing fitting can be asked; or 'empty' when there is nothing to ask about. No I/O, no clock.
 */
import type { StreamParams } from '../config/params.js';
import type { ErrorCode } from '../error-codes.js';
import { mediaTokenCosts, type BackendCapabilities, type GenerateRequest, type ImageInput } from '../model/backend.js';
import { AUDIO_SAMPLE_RATE, rms, type AudioWindow } from './buffers.js';
import { historyTurns, type HistoryEntry } from './context.js';
import { evenIndices, gate } from './gating.js';
import type { RecordWindow } from './records.js';

export interface CycleMedia {
  /** Oldest first. */
  frames: ImageInput[];
  audio: AudioWindow | undefined;
}

export interface PlanContext {
  params: StreamParams;
  capabilities: BackendCapabilities;
  countTextTokens: (text: string) => number;
  /** Earlier outputs to feed back (already cut to `context_history`). */
  history: HistoryEntry[];
}

export interface CyclePlan {
  request: Omit<GenerateRequest, 'signal'>;
  window: RecordWindow;
  frameCount: number;
  audioDurationMs: number;
  estimate: number;
  /** Frames left out by token-budget gating (max_input_tokens). */
  framesDropped: number;
  /** Frames left out because the engine takes at most `capabilities.maxImages` per request. */
  framesDroppedByEngineLimit: number;
  audioDropped: boolean;
  audioSilent: boolean;
}

export type PlanResult =
  | { kind: 'plan'; plan: CyclePlan }
  /** Nothing to ask about (no frames, no audible audio): no cycle, no record. */
  | { kind: 'empty'; audioSilent: boolean }
  | {
      kind: 'error';
      code: ErrorCode;
      message: string;
      estimate: number;
      framesDropped: number;
      framesDroppedByEngineLimit: number;
      window?: RecordWindow;
    };

/** Which limit cut the frames a request carries, for `stats.frames_limited_by` (undefined: none did). */
export function framesLimitedBy(p: { framesDropped: number; framesDroppedByEngineLimit: number }): FramesLimitedBy | undefined {
  if (p.framesDropped > 0) return 'max_input_tokens';
  if (p.framesDroppedByEngineLimit > 0) return 'engine_max_images';
  return undefined;
}

export type FramesLimitedBy = 'engine_max_images' | 'max_input_tokens';

function windowOf(frames: ImageInput[], audio: AudioWindow | undefined): RecordWindow {
  let start = Number.POSITIVE_INFINITY;
  let end = Number.NEGATIVE_INFINITY;
  for (const f of frames) {
    start = Math.min(start, f.ptsMs);
    end = Math.max(end, f.ptsMs);
  }
  if (audio) {
    start = Math.min(start, audio.startPtsMs);
    end = Math.max(end, audio.endPtsMs);
  }
  return { start_ms: Math.round(start), end_ms: Math.round(end) };
}

export function planCycle(media: CycleMedia, ctx: PlanContext): PlanResult {
  const p = ctx.params;
  const wantFrames = p.modality !== 'audio' && ctx.capabilities.images;
  const wantAudio = p.modality !== 'vision' && ctx.capabilities.audio !== null;
  let frames = wantFrames ? media.frames : [];
  let framesDroppedByEngineLimit = 0;
  if (frames.length > ctx.capabilities.maxImages) {
    const keep = evenIndices(frames.length, Math.max(0, ctx.capabilities.maxImages));
    framesDroppedByEngineLimit = frames.length - keep.length;
    frames = keep.map((i) => frames[i]!);
  }
  let audio = wantAudio ? media.audio : undefined;
  let audioSilent = false;
  if (audio && rms(audio.samples) < p.silence_rms) {
    audio = undefined;
    audioSilent = true;
  }
  if (frames.length === 0 && !audio) return { kind: 'empty', audioSilent };

  const history = historyTurns(ctx.history);
  const promptTokens = ctx.countTextTokens(p.prompt);
  const historyTokens = history.reduce((n, t) => n + ctx.countTextTokens(t.text), 0);
  const costs = mediaTokenCosts(ctx.capabilities);
  const g = gate({
    imageCost: costs.image,
    audioCost: costs.audioClip,
    frameCount: frames.length,
    hasAudio: audio !== undefined,
    promptTokens,
    historyTokens,
    historyTurns: history.length,
    maxInputTokens: p.max_input_tokens,
  });
  if (!g.ok) {
    return {
      kind: 'error',
      code: 'input_over_budget',
      message:
        `the request needs at least ${g.minimum} input tokens (prompt ${promptTokens}, history ${historyTokens}, ` +
        `one image ${frames.length > 0 ? costs.image : 0}) but max_input_tokens is ${p.max_input_tokens}`,
      estimate: g.estimate,
      framesDropped: g.framesDropped,
      framesDroppedByEngineLimit,
      window: windowOf(frames, audio),
    };
  }
  const kept = g.keep.map((i) => frames[i]!);
  const keptAudio = g.keepAudio ? audio : undefined;
  const request: Omit<GenerateRequest, 'signal'> = {
    prompt: p.prompt,
    images: kept,
    maxNewTokens: p.max_new_tokens,
    sampling: { temperature: p.temperature, topP: p.top_p },
  };
  if (history.length > 0) request.history = history;
  if (keptAudio) request.audio = { startPtsMs: keptAudio.startPtsMs, sampleRate: AUDIO_SAMPLE_RATE, samples: keptAudio.samples };
  return {
    kind: 'plan',
    plan: {
      request,
      window: windowOf(kept, keptAudio),
      frameCount: kept.length,
      audioDurationMs: keptAudio ? Math.round((keptAudio.samples.length / AUDIO_SAMPLE_RATE) * 1000) : 0,
      estimate: g.estimate,
      framesDropped: g.framesDropped,
      framesDroppedByEngineLimit,
      audioDropped: g.audioDropped,
      audioSilent,
    },
  };
}
