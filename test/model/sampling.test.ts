/**
 * In-process sampling (src/model/sampling.ts): Transformers.js 4.3.1 has no top-k/top-p warpers, so
 * top_k must not be forced to 0 (the whole vocabulary) and top_p is our own logits processor.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyNucleus, generationSampling, nucleusProcessor, topKIndices } from '../../src/model/sampling.js';

describe('in-process sampling options', () => {
  it('does not override top_k (the model generation_config, 64 for Gemma 3n, applies) unless the caller sets it', () => {
    assert.deepEqual(generationSampling({ temperature: 0.7, topP: 0.9 }), { do_sample: true, temperature: 0.7 });
    assert.deepEqual(generationSampling({ temperature: 0.7, topK: 20 }), { do_sample: true, temperature: 0.7, top_k: 20 });
  });

  it('is greedy at temperature 0 or unset', () => {
    assert.deepEqual(generationSampling({ temperature: 0, topK: 5 }), { do_sample: false });
    assert.deepEqual(generationSampling(), { do_sample: false });
  });
});

describe('nucleus (top-p) filtering', () => {
  it('finds the k largest logits best first', () => {
    const row = Float32Array.from([0.1, 5, -2, 3, 9, 3.5, 0]);
    assert.deepEqual(topKIndices(row, 3), [4, 1, 5]);
    assert.deepEqual(topKIndices(row, 0), [4, 1, 5, 3, 0, 6, 2]);
  });

  it('keeps the smallest set of top tokens whose probability reaches top_p and masks the rest to -Infinity', () => {
    // probabilities ≈ 0.5, 0.25, 0.125, 0.0625, 0.0625 (logits are log-probabilities)
    const probs = [0.5, 0.25, 0.125, 0.0625, 0.0625];
    const row = Float32Array.from(probs.map(Math.log));
    assert.equal(applyNucleus(row, 0.7, 64), 2);
    assert.deepEqual([...row].map((v) => Number.isFinite(v)), [true, true, false, false, false]);
    assert.ok(Math.abs(row[0]! - Math.log(0.5)) < 1e-6, 'kept logits are unchanged');
  });

  it('always keeps at least the best token, and applies only among the top_k candidates', () => {
    const row = Float32Array.from([10, 0, 0, 0]);
    assert.equal(applyNucleus(row, 0.01, 64), 1);
    const flat = new Float32Array(10).fill(1);
    assert.equal(applyNucleus(flat, 0.99, 3), 3, 'never more than top_k');
  });

  it('as a logits processor filters each row of a [batch, vocab] tensor, and is off for top_p >= 1', () => {
    const data = Float32Array.from([...[0.5, 0.25, 0.25].map(Math.log), ...[0.9, 0.05, 0.05].map(Math.log)]);
    const proc = nucleusProcessor(0.6, 64)!;
    const out = proc([], { dims: [2, 3], data });
    assert.deepEqual([...out.data].map((v) => Number.isFinite(v)), [true, true, false, true, false, false]);
    assert.equal(nucleusProcessor(1, 64), undefined);
    assert.equal(nucleusProcessor(undefined, 64), undefined);
  });
});
