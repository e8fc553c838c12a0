/**
 * Sampling for the in-process backend, where Transformers.js 4.3.1 falls short
 * (`modeling_utils.js` `_get_logits_processor`: "TODO: Add TopPLogitsWarper and TopKLogitsWarper").
 *
 * - `top_k`: its MultinomialSampler keeps `generation_config.top_k` candidates, or the whole 262 400-wide
 *   vocabulary when top_k is 0 (≈69 ms of TopK + softmax per token against ≈0.35 ms at 64). So top_k is
 *   only passed when the caller sets it; otherwise the model's generation_config (64 for Gemma 3n)
 *   applies.
 * - `top_p`: ignored by the library, so `nucleusProcessor` implements it as a logits processor that
 *   runs after the temperature warper: among the `top_k` best logits it keeps the smallest set whose
 *   probability reaches top_p and masks everything else to -Infinity, which the sampler's softmax
 *   turns into probability 0. With top_k ≤ 0 the candidates are the whole vocabulary (a full sort:
 *   slow, as the caller asked for).
 */
import type { SamplingOptions } from './backend.js';

/** What `model.generate()` gets for sampling. top_k is left out unless the caller set it. */
export interface GenerationSampling {
  do_sample: boolean;
  temperature?: number;
  top_k?: number;
}

export function generationSampling(s: SamplingOptions = {}): GenerationSampling {
  const temperature = s.temperature ?? 0;
  if (!(temperature > 0)) return { do_sample: false };
  return { do_sample: true, temperature, ...(s.topK !== undefined ? { top_k: s.topK } : {}) };
}

/** Indices of the k largest values of `row`, best first (k ≪ row.length: one pass with a small sorted buffer). */
export function topKIndices(row: Float32Array, k: number): number[] {
  const n = row.length;
  if (k <= 0 || k >= n) return Array.from({ length: n }, (_, i) => i).sort((a, b) => row[b]! - row[a]!);
  const idx: number[] = [];
  let floor = -Infinity; // smallest value held once the buffer is full
  for (let i = 0; i < n; i++) {
    const v = row[i]!;
    if (idx.length === k && !(v > floor)) continue;
    let lo = 0;
    let hi = idx.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (row[idx[mid]!]! >= v) lo = mid + 1;
      else hi = mid;
    }
    idx.splice(lo, 0, i);
    if (idx.length > k) idx.pop();
    if (idx.length === k) floor = row[idx[k - 1]!]!;
  }
  return idx;
}

/**
 * Masks `row` in place to its nucleus: among the top-k logits, the smallest prefix whose softmax mass
 * reaches topP (at least one token). Returns how many tokens stay.
 */
export function applyNucleus(row: Float32Array, topP: number, topK: number): number {
  if (!(topP < 1) || row.length === 0) return row.length;
  const cand = topKIndices(row, topK);
  const maxLogit = row[cand[0]!]!;
  const weights = cand.map((i) => Math.exp(row[i]! - maxLogit));
  const total = weights.reduce((a, b) => a + b, 0);
  let keep = 0;
  let mass = 0;
  while (keep < cand.length) {
    mass += weights[keep]! / total;
    keep++;
    if (mass >= topP) break;
  }
  const keptIdx = cand.slice(0, keep);
  const keptVal = keptIdx.map((i) => row[i]!);
  row.fill(-Infinity);
  keptIdx.forEach((i, j) => (row[i] = keptVal[j]!));
  return keep;
}

/** The minimal tensor view a Transformers.js logits processor receives: [batch, vocab] float32. */
interface LogitsTensor {
  dims: number[];
  data: Float32Array;
}

/**
 * A Transformers.js logits processor (a plain callable: `LogitsProcessorList` calls each entry with
 * `(input_ids, logits)` and uses what it returns) implementing top-p. Undefined when top_p is off.
 */
export function nucleusProcessor(topP: number | undefined, topK: number): ((ids: unknown, logits: LogitsTensor) => LogitsTensor) | undefined {
  if (topP === undefined || !(topP > 0 && topP < 1)) return undefined;
  return (_ids, logits) => {
    const vocab = logits.dims.at(-1)!;
    for (let off = 0; off + vocab <= logits.data.length; off += vocab) applyNucleus(logits.data.subarray(off, off + vocab), topP, topK);
    return logits;
  };
}
