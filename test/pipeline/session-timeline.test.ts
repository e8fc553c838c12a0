/**
 * Buffers follow stream time at the session level (real trickle, real ffmpeg media, the real
 * OpenAIBackend against the fake OpenAI-compatible engine): stale frames age out during an audio-only
 * stretch, and a timestamp reset never yields a window spanning both timelines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeTestSegments } from '../helpers/media.js';
import { fakeEngineBackend } from '../helpers/model.js';
import { startPipelineHarness } from '../helpers/pipeline.js';
import { waitFor } from '../helpers/wait.js';

type Gen = { window: { start_ms: number; end_ms: number }; stats: { frame_count: number } };

const backendFor = fakeEngineBackend;

const PARAMS = { generate_every_s: 1, audio_window_s: 2, max_frames: 4, target_fps: 2 };

test('during an audio-only stretch the last video frames age out by stream time instead of riding on every request', { timeout: 60_000 }, async (t) => {
  const backend = await backendFor(t);
  const av = await makeTestSegments({ durationS: 3, fps: 10, width: 160, height: 120, gopS: 1, audio: 'aac' });
  const audioOnly = await makeTestSegments({ durationS: 6, audio: 'aac', noVideo: true, gopS: 1, tsOffsetS: 3 });
  const h = await startPipelineHarness({ backend, params: PARAMS, noOutput: true });
  t.after(() => h.close());
  await h.feed(av, 50);
  // Fed at 20× real time, decoded video trails the audio by a few hundred ms of wall time (JPEG
  // encoding, ffmpeg's frame delay): let the A/V part's frames reach the buffers before the audio-only
  // part moves stream time on, or on a busy machine they would age out before any window carried them.
  await waitFor('the A/V part sampled', () => (h.session.status().counters.frames_in ?? 0) >= 4, 20_000);
  await h.feed(audioOnly, 50);
  await h.endInput();
  await h.session.done;
  const gens = h.generations() as unknown as Gen[];
  assert.ok(gens.some((g) => g.stats.frame_count > 0), 'the A/V part had frames');
  const late = gens.filter((g) => g.window.end_ms - 1000 > (gens[0]!.window.end_ms + 5000));
  assert.ok(late.length >= 1, `records well into the audio-only part: ${gens.map((g) => g.window.end_ms).join(' ')}`);
  for (const g of late) assert.equal(g.stats.frame_count, 0, `window ${g.window.start_ms}–${g.window.end_ms} still carried ${g.stats.frame_count} frames`);
});

test('a timestamp reset clears the buffers: no window spans both timelines (no negative start_ms)', { timeout: 60_000 }, async (t) => {
  const backend = await backendFor(t);
  const first = await makeTestSegments({ durationS: 6, fps: 10, width: 160, height: 120, gopS: 1, audio: 'aac', tsOffsetS: 20 });
  const second = await makeTestSegments({ durationS: 4, fps: 10, width: 160, height: 120, gopS: 1, audio: 'aac', toneHz: 660 });
  const h = await startPipelineHarness({ backend, params: PARAMS, noOutput: true });
  t.after(() => h.close());
  await h.feed(first, 50);
  await waitFor('records of the first timeline', () => h.generations().length >= 2, 20_000);
  await h.feed(second, 50);
  // The due points the second timeline passed while a first-timeline cycle still ran are its catch-up;
  // ending the input before that cycle started would leave nothing to check (a busy machine).
  await waitFor('a record of the second timeline', () => (h.generations() as unknown as Gen[]).some((g) => g.window.end_ms < 10_000), 20_000);
  await h.endInput();
  await h.session.done;
  const gens = h.generations() as unknown as Gen[];
  for (const g of gens) {
    assert.ok(g.window.start_ms >= 0, `window ${g.window.start_ms}–${g.window.end_ms}`);
    assert.ok(g.window.end_ms - g.window.start_ms <= 2600, `window ${g.window.start_ms}–${g.window.end_ms} spans more than the buffers hold`);
  }
  assert.ok(gens.some((g) => g.window.end_ms < 10_000), 'records from the second timeline');
  assert.ok((h.session.status().counters.media_discontinuities ?? 0) >= 1, 'the reset was seen');
});

test('audio-only TS (ffmpeg releases audio in bursts): one record per generate_every_s, no cycle counted as skipped', { timeout: 60_000 }, async (t) => {
  const backend = await backendFor(t);
  const segs = await makeTestSegments({ durationS: 10, audio: 'aac', noVideo: true, gopS: 1 });
  const h = await startPipelineHarness({ backend, params: { generate_every_s: 0.5, audio_window_s: 1, modality: 'audio' }, noOutput: true });
  t.after(() => h.close());
  // Twice real time: each 0.5 s cycle has 250 ms of wall time, which a loaded 2-core machine still
  // gives it; faster feeding would make a slow cycle, not the audio bursts, the cause of a skip.
  await h.feed(segs, 500);
  await h.endInput();
  await h.session.done;
  const c = h.session.status().counters;
  assert.equal(c.cycles_skipped, 0, `skipped ${c.cycles_skipped} of ${c.cycles_started}`);
  assert.ok(h.generations().length >= 17, `records: ${h.generations().length} for 10 s at one per 0.5 s`);
});
