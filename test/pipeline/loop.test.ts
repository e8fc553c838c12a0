/**
 * The generation loop on its own — no ffmpeg, no sockets, no real time spent waiting: synthetic
 * frames and audio at chosen pts drive the stream-time trigger, and a scripted backend answers at
 * once, when released, or never. Pins cadence, the single cycle in flight with one catch-up and
 * counted skips, abort at stop, drain at the input's end, and buffers cleared at a discontinuity.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStartParams, type ParamsInput } from '../../src/config/params.js';
import { rootLogger } from '../../src/log.js';
import type { AudioChunk, SampledFrame } from '../../src/media/types.js';
import type { DataRecord } from '../../src/pipeline/records.js';
import { GenerationLoop } from '../../src/pipeline/loop.js';
import { ScriptedBackend } from '../helpers/model.js';
import { waitFor } from '../helpers/wait.js';

const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xd9]);
const frame = (ptsMs: number): SampledFrame => ({ ptsMs, width: 64, height: 64, jpeg: JPEG });
const audio = (startPtsMs: number, ms: number): AudioChunk => ({ startPtsMs, sampleRate: 16000, samples: new Float32Array((ms * 16000) / 1000).fill(0.1) });

function harness(backend: ScriptedBackend, params: ParamsInput) {
  const records: DataRecord[] = [];
  const errors: string[] = [];
  const loop = new GenerationLoop('loop-test', parseStartParams(params).params, {
    backend,
    publish: (r) => records.push(...r),
    reportError: (code) => errors.push(code),
    log: rootLogger(),
  });
  const gens = () => records.filter((r) => r.type === 'generation');
  /** Frames every `stepMs` of stream time from `fromMs` up to (excluding) `toMs`, with their audio. */
  const feed = (fromMs: number, toMs: number, stepMs = 100): void => {
    for (let t = fromMs; t < toMs; t += stepMs) {
      loop.pushFrame(frame(t));
      loop.pushAudio(audio(t, stepMs));
    }
  };
  /** As feed(), letting the loop run between frames (an instant backend answers in between). */
  const play = async (fromMs: number, toMs: number, stepMs = 100): Promise<void> => {
    for (let t = fromMs; t < toMs; t += stepMs) {
      feed(t, t + stepMs, stepMs);
      await new Promise((r) => setImmediate(r));
    }
  };
  return { loop, records, errors, gens, feed, play };
}

test('cadence: one cycle per generate_every_s of stream time, in order, each window inside its interval', async () => {
  const backend = new ScriptedBackend('instant');
  const h = harness(backend, { generate_every_s: 2, max_frames: 2, target_fps: 10 });
  await h.play(0, 10_050);
  await waitFor('five records', () => h.gens().length >= 5, 2000, 1);
  assert.deepEqual(h.gens().map((g) => g.cycle_seq), [1, 2, 3, 4, 5]);
  for (const g of h.gens()) {
    assert.ok(g.window.start_ms >= 0 && g.window.end_ms <= 10_100, JSON.stringify(g.window));
    assert.equal(g.stats.skipped_cycles, 0);
  }
  assert.equal(backend.calls.length, 5);
  assert.equal(h.loop.counters().cycles_completed, 5);
});

test('single flight: while a cycle runs, one due point waits (catch-up) and the rest are skipped and reported on the next record', async () => {
  const backend = new ScriptedBackend('gated');
  const h = harness(backend, { generate_every_s: 1, max_frames: 2, target_fps: 10 });
  h.feed(0, 6_050); // due at 1, 2, 3, 4, 5, 6 s of stream time while the first cycle is held
  await waitFor('the first request', () => backend.calls.length === 1, 1000, 1);
  assert.equal(h.loop.inFlight, true);
  const c = h.loop.counters();
  assert.equal(c.cycles_started, 1, 'one in flight');
  assert.equal(c.cycles_skipped, 4, 'six due points: one running, one waiting, four skipped');
  backend.release(); // cycle 1 ends → the waiting one starts at once
  await waitFor('the catch-up request', () => backend.calls.length === 2, 1000, 1);
  backend.release();
  await waitFor('two records', () => h.gens().length === 2, 1000, 1);
  assert.equal(h.gens()[0]!.stats.skipped_cycles, 4, 'the first record reports the skips that happened while it ran');
  assert.equal(h.gens()[1]!.stats.skipped_cycles, 0);
  assert.equal(h.loop.inFlight, false);
});

test('abort at stop: close() + settle(0) aborts the running request at once; no generation record, counted as aborted, no new cycle', async () => {
  const backend = new ScriptedBackend('hang');
  const h = harness(backend, { generate_every_s: 1, max_frames: 2, target_fps: 10 });
  h.feed(0, 1_050);
  await waitFor('the request', () => backend.calls.length === 1, 1000, 1);
  const t0 = Date.now();
  h.loop.close();
  await h.loop.settle(0, 1000);
  assert.ok(Date.now() - t0 < 500, 'settled at once');
  assert.equal(h.loop.counters().cycles_aborted, 1);
  assert.equal(h.gens().length, 0);
  h.feed(1_050, 5_050);
  assert.equal(backend.calls.length, 1, 'nothing starts after close()');
});

test('drain at the input end: settle(grace) lets the running cycle finish and publish its record', async () => {
  const backend = new ScriptedBackend('gated');
  const h = harness(backend, { generate_every_s: 1, max_frames: 2, target_fps: 10 });
  h.feed(0, 1_050);
  await waitFor('the request', () => backend.calls.length === 1, 1000, 1);
  h.loop.close();
  const settled = h.loop.settle(10_000, 1000);
  setImmediate(() => backend.release());
  await settled;
  assert.equal(h.gens().length, 1, 'the last cycle’s record is published');
  assert.equal(h.loop.counters().cycles_aborted, 0);
});

test('a timestamp jump back clears both buffers: no window spans the two timelines', async () => {
  const backend = new ScriptedBackend('instant');
  const h = harness(backend, { generate_every_s: 2, max_frames: 4, target_fps: 10 });
  await h.play(50_000, 54_050);
  await h.play(0, 4_050); // the source restarted its clock
  await waitFor('records on both timelines', () => h.gens().length >= 3, 2000, 1);
  assert.equal(h.loop.counters().media_discontinuities >= 1, true);
  for (const g of h.gens()) {
    const w = g.window;
    assert.ok(w.start_ms >= 0 && w.end_ms - w.start_ms <= 4_100, `window ${JSON.stringify(w)} stays on one timeline`);
  }
});
