/**
 * Content-aware cycles on generated media with a known structure (static test cards, hard cuts,
 * testsrc2 motion, a tone burst, espeak-ng speech, silence), decoded by the real sampler (ffmpeg, real
 * frame signatures) and replayed in presentation-time order into the generation loop with a scripted
 * backend: duplicates dropped on static stretches, unchanged cycles skipped while static and silent,
 * a cycle within the minimum spacing after each cut and each sound end, none triggered on a static
 * scene, and every record's `trigger` right. The same clip with the defaults keeps the fixed cadence.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStartParams, type ParamsInput } from '../../src/config/params.js';
import { rootLogger } from '../../src/log.js';
import { generateSceneClip, type SceneClip } from '../../src/media/test-scenes.js';
import type { DataRecord } from '../../src/pipeline/records.js';
import { GenerationLoop } from '../../src/pipeline/loop.js';
import type { GenerationRecord, UnchangedRecord } from '../../src/pipeline/records.js';
import { decodeClip, replay, type DecodedClip } from '../helpers/content.js';
import { ScriptedBackend } from '../helpers/model.js';

const SPEC = {
  width: 320,
  height: 180,
  fps: 15,
  scenes: [
    { kind: 'static', card: 'smptebars', durationS: 6 },
    { kind: 'static', card: 'rgbtestsrc', durationS: 5 },
    { kind: 'moving', durationS: 4 },
    { kind: 'static', card: 'color:orange', durationS: 10 },
  ],
  sounds: [
    { kind: 'silence', durationS: 7 },
    { kind: 'tone', hz: 440, durationS: 1 },
    { kind: 'silence', durationS: 10 },
    { kind: 'speech', text: 'hello there, this is a test', durationS: 3 },
    { kind: 'silence', durationS: 4 },
  ],
} as const;

let media: Promise<{ clip: SceneClip; decoded: DecodedClip }> | undefined;
function clipOnce(): Promise<{ clip: SceneClip; decoded: DecodedClip }> {
  media ??= (async () => {
    const clip = await generateSceneClip({ ...SPEC, scenes: [...SPEC.scenes], sounds: [...SPEC.sounds] });
    return { clip, decoded: await decodeClip(clip.path, { targetFps: 3, downscalePx: 128, letterbox: true }) };
  })();
  return media;
}

async function run(params: ParamsInput) {
  const { clip, decoded } = await clipOnce();
  const backend = new ScriptedBackend('instant');
  const records: DataRecord[] = [];
  const loop = new GenerationLoop('content-test', parseStartParams(params).params, {
    backend,
    publish: (r) => records.push(...r),
    reportError: () => undefined,
    log: rootLogger(),
  });
  await replay(loop, decoded, () => new Promise((r) => setImmediate(r)));
  const gens = records.filter((r): r is GenerationRecord => r.type === 'generation');
  const unchanged = records.filter((r): r is UnchangedRecord => r.type === 'unchanged');
  return { clip, decoded, backend, loop, records, gens, unchanged };
}

const CONTENT: ParamsInput = { content_aware: true, generate_every_s: 3, target_fps: 3, max_frames: 30, downscale_px: 128, min_trigger_spacing_s: 1 };

const SPACING_MS = 1000;
const FRAME_MS = 1000 / 3;
const SOUND_END_SILENCE_MS = 500;
/** espeak-ng ends its audio with a few hundred ms of silence: the voice stops before the clip's "end". */
const SPEECH_TAIL_MS = 450;

test('content-aware cycles on a clip of static cards, cuts, motion, a tone burst and speech: every cut and sound end gets its own early cycle, static silence costs no model call', async () => {
  const r = await run(CONTENT);
  const { clip } = r;
  assert.equal(clip.cutsMs.length, 3);
  assert.equal(clip.soundEndsMs.length, 2);
  assert.equal(r.backend.calls.length, r.gens.length, 'one model call per generation record: unchanged cycles call nothing');

  // A cycle within the minimum spacing after each cut: the first record covering it.
  for (const c of clip.cutsMs) {
    const g = r.gens.find((x) => x.window.end_ms >= c);
    assert.ok(g, `a record covers the cut at ${c}`);
    assert.equal(g.trigger, 'scene_change', `the first record after the cut at ${c} ran for it`);
    assert.ok(g.window.end_ms <= c + SPACING_MS + FRAME_MS, `cut ${c} → cycle at ${g.window.end_ms}`);
  }
  // … and after each sound end, once its quiet is confirmed.
  for (const e of clip.soundEndsMs) {
    const g = r.gens.find((x) => x.window.end_ms >= e - SPEECH_TAIL_MS);
    assert.ok(g, `a record covers the sound end at ${e}`);
    assert.equal(g.trigger, 'speech_end', `the first record after the sound end at ${e} ran for it`);
    assert.ok(g.window.end_ms <= e + SOUND_END_SILENCE_MS + SPACING_MS, `sound end ${e} → cycle at ${g.window.end_ms}`);
  }
  // Every record's trigger is what the clip's structure says: early cycles only next to an event,
  // clock cycles a full interval after the cycle before.
  let prevEnd: number | undefined;
  for (const g of r.gens) {
    const end = g.window.end_ms;
    if (g.trigger === 'scene_change') assert.ok(clip.cutsMs.some((c) => end >= c && end <= c + SPACING_MS + FRAME_MS), `scene_change at ${end} follows a cut`);
    else if (g.trigger === 'speech_end') assert.ok(clip.soundEndsMs.some((e) => end >= e - SPEECH_TAIL_MS && end <= e + SOUND_END_SILENCE_MS + SPACING_MS), `speech_end at ${end} follows a sound end`);
    else {
      assert.equal(g.trigger, 'interval');
      if (prevEnd !== undefined) assert.ok(end - prevEnd >= 3000 - FRAME_MS, `interval cycle at ${end} came a full interval after ${prevEnd}`);
    }
    prevEnd = end;
  }
  const c = r.loop.counters();
  assert.equal(c.scene_changes, clip.cutsMs.length, 'no scene change detected inside a static (or moving) scene');
  assert.equal(c.speech_ends, clip.soundEndsMs.length);
  assert.equal(c.cycles_triggered_scene_change, 3);
  assert.equal(c.cycles_triggered_speech_end, 2);

  // Near-duplicates dropped: a static scene offers one frame, not the 9 sampled meanwhile.
  assert.ok(c.frames_dropped_as_duplicate >= 30, `duplicates dropped: ${c.frames_dropped_as_duplicate}`);
  for (const g of r.gens) {
    const inStatic = clip.staticMs.some(([a, b]) => g.window.end_ms >= a + 1000 && g.window.end_ms < b);
    if (inStatic) assert.equal(g.stats.frame_count, 1, `static scene at ${g.window.end_ms}: one frame`);
  }
  assert.equal(r.gens[0]!.stats.frame_count, 1);
  assert.ok(r.gens[0]!.stats.frames_dropped_as_duplicate! >= 5, 'the first record counts the duplicates dropped before it');
  const dupSum = r.gens.reduce((n, g) => n + g.stats.frames_dropped_as_duplicate!, 0);
  const framesAfterLast = r.decoded.frames.filter((f) => f.ptsMs > r.gens.at(-1)!.window.end_ms).length;
  assert.ok(dupSum <= c.frames_dropped_as_duplicate && dupSum >= c.frames_dropped_as_duplicate - framesAfterLast, 'records report the drops (all but those after the last record)');

  // Unchanged cycles on the static silent stretches: a small record naming the last generation,
  // counted by the next generation.
  assert.ok(r.unchanged.length >= 2, `unchanged cycles: ${r.unchanged.length}`);
  for (const u of r.unchanged) {
    const before = r.records.slice(0, r.records.indexOf(u)).filter((x): x is GenerationRecord => x.type === 'generation').at(-1)!;
    assert.equal(u.cycle_id, before.cycle_id, 'refers to the last generation');
    assert.equal(u.cycle_seq, before.cycle_seq);
    const silentStatic = clip.staticMs.some(([a, b]) => u.window.start_ms >= a && u.window.end_ms <= b + FRAME_MS);
    assert.ok(silentStatic, `unchanged window ${JSON.stringify(u.window)} lies in a static scene`);
    assert.ok(!clip.soundsMs.some(([a, b]) => a < u.window.end_ms && b > u.window.start_ms), `unchanged window ${JSON.stringify(u.window)} is silent`);
  }
  const afterFirst = r.records.slice(r.records.indexOf(r.unchanged[0]!)).find((x): x is GenerationRecord => x.type === 'generation')!;
  assert.equal(afterFirst.stats.unchanged_cycles, 1, 'the next generation counts the unchanged cycle');
  assert.equal(c.cycles_unchanged, r.unchanged.length);
});

test('defaults keep the fixed cadence on the same clip: every cycle by the clock with all its frames, nothing dropped or skipped', async () => {
  const fixed = await run({ ...CONTENT, content_aware: false });
  const aware = await run(CONTENT);
  assert.equal(parseStartParams({}).params.content_aware, false, 'content-aware is opt-in');
  assert.equal(fixed.unchanged.length, 0);
  assert.ok(fixed.gens.length >= 7);
  for (const [i, g] of fixed.gens.entries()) {
    assert.equal(g.trigger, 'interval');
    assert.equal(g.stats.frames_dropped_as_duplicate, 0);
    assert.equal(g.stats.unchanged_cycles, 0);
    if (i > 0) assert.ok(Math.abs(g.window.end_ms - fixed.gens[i - 1]!.window.end_ms - 3000) <= 400, 'one cycle per generate_every_s');
    if (i > 0) assert.equal(g.stats.frame_count, 8, 'all buffered frames (to the engine limit)');
  }
  const c = fixed.loop.counters();
  assert.equal(c.frames_dropped_as_duplicate + c.cycles_unchanged + c.scene_changes + c.speech_ends, 0);
  const images = (x: typeof fixed) => x.gens.reduce((n, g) => n + g.stats.frame_count, 0);
  assert.ok(images(aware) * 2 < images(fixed), `content-aware images ${images(aware)} vs fixed ${images(fixed)}`);
});

test('unchanged_output "none": unchanged cycles publish nothing, and the next generation still counts them', async () => {
  const r = await run({ ...CONTENT, unchanged_output: 'none' });
  assert.equal(r.unchanged.length, 0);
  const counted = r.gens.reduce((n, g) => n + g.stats.unchanged_cycles!, 0);
  assert.ok(counted >= 1, 'counted in a later generation');
  assert.ok(r.loop.counters().cycles_unchanged >= counted);
});
