/**
 * Content-aware cycles in the generation loop, in milliseconds: synthetic frames whose signatures
 * are chosen (a flat thumbnail of one grey level: the distance between two is their difference over
 * 255) and a scripted backend. Pins the minimum spacing between early cycles, an event during a
 * running cycle (it runs as the catch-up, named after the event, not counted as skipped), live
 * switching on and off, a failed cycle never being what later cycles are "unchanged" from, and the
 * trigger policy on its own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStartParams, type ParamsInput, type StreamParams } from '../../src/config/params.js';
import { rootLogger } from '../../src/log.js';
import type { AudioChunk, SampledFrame } from '../../src/media/types.js';
import type { GenerateEvent, GenerateRequest } from '../../src/model/backend.js';
import type { DataRecord } from '../../src/pipeline/records.js';
import { GenerationLoop } from '../../src/pipeline/loop.js';
import type { GenerationRecord } from '../../src/pipeline/records.js';
import { TriggerPolicy } from '../../src/pipeline/triggers.js';
import { ScriptedBackend } from '../helpers/model.js';
import { waitFor } from '../helpers/wait.js';

const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xd9]);
const frame = (ptsMs: number, grey: number): SampledFrame => ({ ptsMs, width: 64, height: 64, jpeg: JPEG, signature: new Uint8Array(256).fill(grey) });
const silence = (startPtsMs: number, ms: number): AudioChunk => ({ startPtsMs, sampleRate: 16000, samples: new Float32Array((ms * 16000) / 1000) });

/** Fault injection: a scripted backend whose first call fails. */
class FailsFirstCallBackend extends ScriptedBackend {
  override async *generate(req: GenerateRequest): AsyncIterable<GenerateEvent> {
    if (this.calls.length === 0) {
      this.calls.push(req);
      throw Object.assign(new Error('engine down'), { code: 'engine_error' });
    }
    yield* super.generate(req);
  }
}

function harness(backend: ScriptedBackend, params: ParamsInput) {
  const records: DataRecord[] = [];
  const base: ParamsInput = { content_aware: true, generate_every_s: 4, target_fps: 10, max_frames: 30, min_trigger_spacing_s: 1, ...params };
  const loop = new GenerationLoop('content-loop', parseStartParams(base).params, {
    backend,
    publish: (r) => records.push(...r),
    reportError: () => undefined,
    log: rootLogger(),
  });
  /** Frames every 100 ms from `fromMs` to `toMs` (excluded) at grey level `grey(t)`, with silent audio. */
  const play = async (fromMs: number, toMs: number, grey: (t: number) => number): Promise<void> => {
    for (let t = fromMs; t < toMs; t += 100) {
      loop.pushFrame(frame(t, grey(t)));
      loop.pushAudio(silence(t, 100));
      await new Promise((r) => setImmediate(r));
    }
  };
  const gens = () => records.filter((r): r is GenerationRecord => r.type === 'generation');
  return { loop, records, gens, play, params: (p: ParamsInput): StreamParams => parseStartParams({ ...base, ...p }).params };
}

test('two cuts 300 ms apart make one early cycle; a cut right after a cycle waits for the minimum spacing', async () => {
  const h = harness(new ScriptedBackend('instant'), {});
  // First cycle at 4 s (interval); cuts at 4.3 s (spacing: waits until 5 s) and 4.6 s (merged).
  await h.play(0, 7000, (t) => (t < 4300 ? 10 : t < 4600 ? 120 : 230));
  const g = h.gens();
  assert.deepEqual(g.map((x) => x.trigger), ['interval', 'scene_change']);
  // Stream time reaches 5 s with the audio ending there; the newest frame then is 4.9 s.
  assert.equal(g[1]!.window.end_ms, 4900, 'the early cycle starts once the spacing since the 4 s cycle is over');
  assert.equal(h.loop.counters().scene_changes, 2);
  assert.equal(h.loop.counters().cycles_triggered_scene_change, 1);
});

test('a cut while a cycle runs: the early cycle runs as soon as it ends, named after the cut, and no cycle counts as skipped', async () => {
  const backend = new ScriptedBackend('gated');
  const h = harness(backend, {});
  await h.play(0, 4100, () => 10);
  await waitFor('the first request', () => backend.calls.length === 1, 1000, 1);
  await h.play(4100, 5600, (t) => (t < 5200 ? 10 : 200)); // cut at 5.2 s while cycle 1 is held
  assert.equal(backend.calls.length, 1);
  backend.release();
  await waitFor('the early cycle', () => backend.calls.length === 2, 1000, 1);
  backend.release();
  await waitFor('two records', () => h.gens().length === 2, 1000, 1);
  assert.deepEqual(h.gens().map((x) => x.trigger), ['interval', 'scene_change']);
  assert.equal(h.gens()[1]!.stats.skipped_cycles, 0);
  assert.equal(h.loop.counters().cycles_skipped, 0);
});

test('switched on and off live: duplicates dropped and unchanged cycles skipped only while on', async () => {
  const backend = new ScriptedBackend('instant');
  const h = harness(backend, { content_aware: false });
  await h.play(0, 8100, () => 50); // static, silent, mode off: two interval cycles with every frame
  assert.deepEqual(h.gens().map((x) => [x.trigger, x.stats.frame_count]), [['interval', 8], ['interval', 8]]);
  h.loop.setParams(h.params({ content_aware: true }));
  await h.play(8100, 16_100, () => 50); // on: one cycle (nothing to compare with yet), then unchanged
  assert.equal(h.gens().length, 3);
  assert.equal(h.gens()[2]!.stats.frame_count, 1, 'a static scene offers one frame');
  assert.equal(h.records.filter((r) => r.type === 'unchanged').length, 1);
  h.loop.setParams(h.params({ content_aware: false }));
  await h.play(16_100, 20_100, () => 50);
  assert.equal(h.gens().length, 4, 'off again: the fixed cadence runs whatever the content');
  assert.equal(h.gens()[3]!.stats.frame_count, 8);
  assert.equal(h.gens()[3]!.stats.unchanged_cycles, 1, 'the skip while on is still reported');
  assert.equal(backend.calls.length, 4);
});

test('a failed cycle is never what the next one is "unchanged" from: it runs again', async () => {
  const backend = new FailsFirstCallBackend('instant');
  const h = harness(backend, {});
  await h.play(0, 12_100, () => 50);
  assert.deepEqual(h.records.map((r) => r.type), ['error', 'generation', 'unchanged']);
  assert.equal(h.records[0]!.type === 'error' && h.records[0]!.trigger, 'interval');
});

test('the trigger policy: events wait for the spacing, merge into one, and name the cycle that covers them', () => {
  const p = new TriggerPolicy(1000);
  assert.deepEqual(p.poll(0), { kind: 'none' });
  assert.deepEqual(p.launched(1000), { trigger: 'interval' });
  p.event('speech_end', 1500);
  p.event('scene_change', 1700);
  assert.deepEqual(p.poll(1700), { kind: 'wait', atMs: 2000, trigger: 'speech_end' });
  assert.deepEqual(p.poll(2000), { kind: 'due', trigger: 'speech_end', eventPtsMs: 1500 });
  assert.deepEqual(p.launched(2000), { trigger: 'speech_end', eventPtsMs: 1500 });
  assert.deepEqual(p.poll(5000), { kind: 'none' }, 'both events were covered by that cycle');
  p.event('scene_change', 9000);
  assert.deepEqual(p.poll(9000), { kind: 'due', trigger: 'scene_change', eventPtsMs: 9000 });
});
