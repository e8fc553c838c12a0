import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AUDIO_COST, IMAGE_COST, estimateTokens, evenIndices, gate } from '../../src/pipeline/gating.js';
import { TURN_MARKUP_TOKENS } from '../../src/model/backend.js';

test('gemma 3n unit costs: 256+4 per image, 188+4 per audio clip, plus prompt and turn markup', () => {
  assert.equal(IMAGE_COST, 260);
  assert.equal(AUDIO_COST, 192);
  // 8 frames + audio + a 60-token prompt ≈ 2 330 tokens (the backends note's worked example, with markup)
  assert.equal(estimateTokens(8, true, 60), 8 * 260 + 192 + 60 + TURN_MARKUP_TOKENS);
  assert.equal(estimateTokens(0, false, 5, 2), TURN_MARKUP_TOKENS + 5 + 2 * 5);
});

test('a request within budget keeps every frame and the audio', () => {
  const g = gate({ frameCount: 8, hasAudio: true, promptTokens: 60, historyTokens: 0, historyTurns: 0, maxInputTokens: 10000 });
  assert.ok(g.ok);
  assert.deepEqual(g.keep, [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(g.keepAudio, true);
  assert.equal(g.framesDropped, 0);
  assert.equal(g.estimate, 8 * 260 + 192 + 60 + 10);
});

test('over budget, frames are dropped evenly across the window and the newest is always kept', () => {
  // budget for exactly 5 frames + audio + text
  const max = 10 + 40 + 192 + 5 * 260;
  const g = gate({ frameCount: 30, hasAudio: true, promptTokens: 40, historyTokens: 0, historyTurns: 0, maxInputTokens: max });
  assert.ok(g.ok);
  assert.deepEqual(g.keep, [0, 7, 15, 22, 29]);
  assert.equal(g.framesDropped, 25);
  assert.equal(g.keepAudio, true);
  assert.equal(g.estimate, max);
  // one token less: only 4 fit
  const g2 = gate({ frameCount: 30, hasAudio: true, promptTokens: 40, historyTokens: 0, historyTurns: 0, maxInputTokens: max - 1 });
  assert.ok(g2.ok);
  assert.equal(g2.keep.length, 4);
  assert.equal(g2.keep.at(-1), 29);
  assert.ok(g2.estimate <= max - 1);
});

test('history text and turns count toward the budget', () => {
  const base = { frameCount: 10, hasAudio: false, promptTokens: 20, maxInputTokens: 10 + 20 + 10 * 260 };
  const without = gate({ ...base, historyTokens: 0, historyTurns: 0 });
  assert.ok(without.ok && without.framesDropped === 0);
  const withHistory = gate({ ...base, historyTokens: 100, historyTurns: 4 });
  assert.ok(withHistory.ok);
  assert.equal(withHistory.framesDropped, 1);
});

test('when one frame plus audio does not fit, the audio is dropped and the newest frame kept', () => {
  const max = 10 + 40 + 260 + 100; // one frame fits, one frame + 192 audio does not
  const g = gate({ frameCount: 12, hasAudio: true, promptTokens: 40, historyTokens: 0, historyTurns: 0, maxInputTokens: max });
  assert.ok(g.ok);
  assert.deepEqual(g.keep, [11]);
  assert.equal(g.keepAudio, false);
  assert.equal(g.audioDropped, true);
  assert.equal(g.framesDropped, 11);
});

test('when not even one frame fits, gating fails (the cycle answers with an error record)', () => {
  const g = gate({ frameCount: 3, hasAudio: true, promptTokens: 300, historyTokens: 0, historyTurns: 0, maxInputTokens: 256 });
  assert.equal(g.ok, false);
  if (!g.ok) {
    assert.equal(g.minimum, 10 + 300 + 260);
    assert.equal(g.audioDropped, true);
  }
  const audioOnly = gate({ frameCount: 0, hasAudio: true, promptTokens: 100, historyTokens: 0, historyTurns: 0, maxInputTokens: 256 });
  assert.equal(audioOnly.ok, false);
  const audioFits = gate({ frameCount: 0, hasAudio: true, promptTokens: 40, historyTokens: 0, historyTurns: 0, maxInputTokens: 256 });
  assert.ok(audioFits.ok && audioFits.keepAudio && audioFits.estimate === 10 + 40 + 192);
});

test('evenIndices spreads k picks over n, oldest first, unique, ending at the newest', () => {
  for (let n = 1; n <= 40; n++) {
    for (let k = 1; k <= n; k++) {
      const idx = evenIndices(n, k);
      assert.equal(idx.length, k);
      assert.equal(idx.at(-1), n - 1);
      assert.equal(new Set(idx).size, k);
      for (let i = 1; i < idx.length; i++) assert.ok(idx[i]! > idx[i - 1]!);
      if (k >= 2) assert.equal(idx[0], 0);
    }
  }
  assert.deepEqual(evenIndices(5, 9), [0, 1, 2, 3, 4]);
  assert.deepEqual(evenIndices(5, 0), []);
});

test('a backend with other per-item costs (the tiny test model) is gated in its own units', () => {
  const g = gate({ frameCount: 10, hasAudio: true, promptTokens: 10, historyTokens: 0, historyTurns: 0, maxInputTokens: 10 + 10 + 20 + 3 * 36, imageCost: 36, audioCost: 20 });
  assert.ok(g.ok);
  assert.equal(g.keep.length, 3);
  assert.equal(g.estimate, 10 + 10 + 20 + 3 * 36);
});
