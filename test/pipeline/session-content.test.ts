/**
 * Content-aware cycles through a whole session (real trickle, real ffmpeg decoding and signatures, the
 * real OpenAIBackend against the fake OpenAI-compatible engine): switched on live with a params
 * update, records on the data channel carry `trigger`, a cut gets a `scene_change` record, a static
 * silent stretch gets `unchanged` records instead of model calls, and the counters say so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseParamsUpdate } from '../../src/config/params.js';
import { encodeJpeg } from '../../src/media/jpeg.js';
import { generateSceneClip } from '../../src/media/test-scenes.js';
import { splitIntoSegments } from '../../src/media/test-source.js';
import { fakeEngineBackend } from '../helpers/model.js';
import { startPipelineHarness } from '../helpers/pipeline.js';
import { waitFor } from '../helpers/wait.js';

type Rec = { type: string; trigger?: string; cycle_id: string; window: { start_ms: number; end_ms: number }; stats: Record<string, number> };

test('switched on live: a cut gets a scene_change record, a static silent stretch unchanged records, every generation a trigger', { timeout: 90_000 }, async (t) => {
  const backend = await fakeEngineBackend(t);
  const clip = await generateSceneClip({
    width: 320,
    height: 180,
    fps: 15,
    scenes: [
      { kind: 'static', card: 'smptebars', durationS: 12 },
      { kind: 'static', card: 'rgbtestsrc', durationS: 10 },
    ],
    sounds: [{ kind: 'silence', durationS: 22 }],
  });
  const segs = await splitIntoSegments(clip.path);
  const h = await startPipelineHarness({ backend, params: { generate_every_s: 2, target_fps: 3, downscale_px: 128 }, noOutput: true });
  t.after(() => h.close());
  // Fed at 5× real time; the sampler drops frames while more than 8 wait for JPEG encoding, so the
  // encoder (sharp, loaded on first use: slow on a busy machine) is loaded before the feed starts.
  await encodeJpeg(Buffer.alloc(16 * 16 * 3), 16, 16, 80);
  await h.feed(segs.slice(0, 7), 200);
  await waitFor('a fixed-cadence record', () => h.generations().length >= 1, 20_000);
  const cur = h.session.params();
  const up = parseParamsUpdate(cur, { content_aware: true, min_trigger_spacing_s: 0.5 });
  h.session.updateParams(up.params, up.changed, { content_aware: true, min_trigger_spacing_s: 0.5 });
  await h.feed(segs.slice(7), 200);
  await h.endInput();
  await h.session.done;

  const recs = h.data.records as unknown as Rec[];
  const gens = recs.filter((r) => r.type === 'generation');
  for (const g of gens) assert.ok(['interval', 'scene_change'].includes(g.trigger ?? ''), `trigger ${g.trigger}`);
  const cut = clip.cutsMs[0]!;
  const first = gens.find((g) => g.window.end_ms >= cut);
  assert.ok(first, 'a record covers the cut');
  assert.equal(first.trigger, 'scene_change');
  assert.ok(first.window.end_ms <= cut + 1000, `cut ${cut} → record window end ${first.window.end_ms}`);
  const unchanged = recs.filter((r) => r.type === 'unchanged');
  assert.ok(unchanged.length >= 2, `unchanged records: ${unchanged.length}`);
  for (const u of unchanged) assert.ok(gens.some((g) => g.cycle_id === u.cycle_id), 'names a generation');
  const c = h.session.status().counters;
  assert.equal(c.cycles_unchanged, unchanged.length);
  assert.ok((c.frames_dropped_as_duplicate ?? 0) >= 20, `duplicates dropped: ${c.frames_dropped_as_duplicate}`);
  assert.equal(c.scene_changes, 1, 'one cut, no change detected inside the static scenes');
  assert.ok(gens.some((g) => g.stats.unchanged_cycles! >= 1) || unchanged.length > 0);
});
