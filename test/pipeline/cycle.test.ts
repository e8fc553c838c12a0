import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStartParams } from '../../src/config/params.js';
import { framesLimitedBy, planCycle } from '../../src/pipeline/plan.js';
import type { BackendCapabilities } from '../../src/model/backend.js';

const frame = (ptsMs: number) => ({ ptsMs, width: 4, height: 4, jpeg: Buffer.from([1]) });
const caps: BackendCapabilities = { images: true, maxImages: 8, audio: 'input_audio' };

test("max_frames 30 (the README's example) on an 8-image engine: 22 frames dropped by the engine limit, none by token gating", () => {
  const { params } = parseStartParams({ max_frames: 30, modality: 'vision', max_input_tokens: 32_000 });
  const frames = Array.from({ length: 30 }, (_, i) => frame(i * 100));
  const r = planCycle({ frames, audio: undefined }, { params, capabilities: caps, countTextTokens: (t) => t.length, history: [] });
  assert.equal(r.kind, 'plan');
  if (r.kind !== 'plan') return;
  assert.equal(r.plan.frameCount, 8);
  assert.equal(r.plan.framesDroppedByEngineLimit, 22);
  assert.equal(r.plan.framesDropped, 0, 'the token budget fits 8 frames: gating dropped none');
});

test('token gating after the engine limit is counted as gating and named as the binding limit', async () => {
  const { params } = parseStartParams({ max_frames: 30, modality: 'vision', max_input_tokens: 3 * 260 + 200 });
  const frames = Array.from({ length: 30 }, (_, i) => frame(i * 100));
  const r = planCycle({ frames, audio: undefined }, { params, capabilities: caps, countTextTokens: (t) => t.length, history: [] });
  assert.equal(r.kind, 'plan');
  if (r.kind !== 'plan') return;
  assert.equal(r.plan.framesDroppedByEngineLimit, 22);
  assert.ok(r.plan.framesDropped > 0 && r.plan.frameCount + r.plan.framesDropped === 8);
  assert.equal(framesLimitedBy(r.plan), 'max_input_tokens');
  assert.equal(framesLimitedBy({ framesDropped: 0, framesDroppedByEngineLimit: 22 }), 'engine_max_images');
  assert.equal(framesLimitedBy({ framesDropped: 0, framesDroppedByEngineLimit: 0 }), undefined);
});
