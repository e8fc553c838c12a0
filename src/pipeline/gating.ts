/**
 * Token gating: decides what of a cycle's media fits the input budget before a request is built.
 * Pure arithmetic in Gemma 3n's fixed units, so it is cheap, deterministic and testable without a
 * model. Order of sacrifice: frames (evenly, the newest always kept) → audio → give up.
 */
import {
  AUDIO_DELIMITER_TOKENS,
  IMAGE_DELIMITER_TOKENS,
  TOKENS_PER_AUDIO_CLIP,
  TOKENS_PER_IMAGE,
  TURN_MARKUP_TOKENS,
} from '../model/backend.js';

export const IMAGE_COST = TOKENS_PER_IMAGE + IMAGE_DELIMITER_TOKENS;
export const AUDIO_COST = TOKENS_PER_AUDIO_CLIP + AUDIO_DELIMITER_TOKENS;

export interface GateInput {
  frameCount: number;
  hasAudio: boolean;
  /** Text tokens of the prompt (and system text, if any). */
  promptTokens: number;
  /** Text tokens of earlier turns fed back as context (0 when off). */
  historyTokens: number;
  /** Turn markup for the earlier turns (each turn costs its own start/end markers). */
  historyTurns: number;
  maxInputTokens: number;
  /** Cost of one image incl. delimiters; default Gemma 3n's (see mediaTokenCosts). */
  imageCost?: number;
  /** Cost of one audio clip incl. delimiters; default Gemma 3n's. */
  audioCost?: number;
}

export type GateResult =
  | {
      ok: true;
      /** Indices into the offered frames (oldest first) that are kept. */
      keep: number[];
      keepAudio: boolean;
      framesDropped: number;
      audioDropped: boolean;
      estimate: number;
    }
  | { ok: false; estimate: number; minimum: number; framesDropped: number; audioDropped: boolean };

/** `<start_of_turn>role\n … <end_of_turn>\n` around one earlier turn. */
export const TOKENS_PER_HISTORY_TURN = 5;

export function estimateTokens(
  frames: number,
  audio: boolean,
  textTokens: number,
  historyTurns = 0,
  costs: { image: number; audio: number } = { image: IMAGE_COST, audio: AUDIO_COST },
): number {
  return (
    TURN_MARKUP_TOKENS + textTokens + historyTurns * TOKENS_PER_HISTORY_TURN + frames * costs.image + (audio ? costs.audio : 0)
  );
}

/**
 * `k` indices spread evenly over `0..n-1`, oldest first, always including `n-1` (and `0` when k ≥ 2).
 * Even spacing keeps the request's view of the window's motion instead of a contiguous tail.
 */
export function evenIndices(n: number, k: number): number[] {
  if (k >= n) return Array.from({ length: n }, (_, i) => i);
  if (k <= 0) return [];
  if (k === 1) return [n - 1];
  const out: number[] = [];
  for (let j = 0; j < k; j++) out.push(Math.round((j * (n - 1)) / (k - 1)));
  return out;
}

export function gate(input: GateInput): GateResult {
  const costs = { image: input.imageCost ?? IMAGE_COST, audio: input.audioCost ?? AUDIO_COST };
  const text = input.promptTokens + input.historyTokens;
  const est = (frames: number, audio: boolean): number => estimateTokens(frames, audio, text, input.historyTurns, costs);
  const n = Math.max(0, Math.floor(input.frameCount));
  const full = est(n, input.hasAudio);
  if (full <= input.maxInputTokens) {
    return { ok: true, keep: evenIndices(n, n), keepAudio: input.hasAudio, framesDropped: 0, audioDropped: false, estimate: full };
  }
  const fixed = est(0, false);
  const audioCost = input.hasAudio ? costs.audio : 0;
  const fitWithAudio = Math.floor((input.maxInputTokens - fixed - audioCost) / costs.image);
  if (n === 0) {
    // Audio-only request that does not fit: dropping the audio would leave nothing to ask about.
    return { ok: false, estimate: full, minimum: full, framesDropped: 0, audioDropped: input.hasAudio };
  }
  if (fitWithAudio >= 1) {
    const keep = evenIndices(n, fitWithAudio);
    return {
      ok: true,
      keep,
      keepAudio: input.hasAudio,
      framesDropped: n - keep.length,
      audioDropped: false,
      estimate: est(keep.length, input.hasAudio),
    };
  }
  // Not even one frame with the audio: the newest frame alone, if that fits.
  const oneFrame = est(1, false);
  if (oneFrame <= input.maxInputTokens) {
    const keep = evenIndices(n, Math.floor((input.maxInputTokens - fixed) / costs.image));
    return {
      ok: true,
      keep,
      keepAudio: false,
      framesDropped: n - keep.length,
      audioDropped: input.hasAudio,
      estimate: est(keep.length, false),
    };
  }
  return { ok: false, estimate: full, minimum: oneFrame, framesDropped: n, audioDropped: input.hasAudio };
}
