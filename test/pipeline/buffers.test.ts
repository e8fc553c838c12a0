import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AudioBuffer, FrameBuffer, rms } from '../../src/pipeline/buffers.js';

const frame = (ptsMs: number) => ({ ptsMs, width: 4, height: 4, jpeg: Buffer.from([ptsMs & 255]) });

test('the frame buffer keeps the newest max_frames frames and can be resized live', () => {
  const b = new FrameBuffer(3);
  for (let i = 0; i < 5; i++) b.push(frame(i * 100));
  assert.deepEqual(b.snapshot().map((f) => f.ptsMs), [200, 300, 400]);
  b.resize(2);
  assert.deepEqual(b.snapshot().map((f) => f.ptsMs), [300, 400]);
  b.resize(10);
  b.push(frame(500));
  assert.deepEqual(b.snapshot().map((f) => f.ptsMs), [300, 400, 500]);
  const snap = b.snapshot();
  b.push(frame(600));
  assert.equal(snap.length, 3, 'a snapshot does not see later frames');
});

test('the audio buffer keeps the newest audio_window_s seconds, contiguous, with its media window', () => {
  const b = new AudioBuffer(1); // 16000 samples
  for (let i = 0; i < 3; i++) b.push({ startPtsMs: i * 500, sampleRate: 16000, samples: new Float32Array(8000).fill(i + 1) });
  const w = b.snapshot()!;
  assert.equal(w.samples.length, 16000);
  assert.equal(w.endPtsMs, 1500);
  assert.equal(w.startPtsMs, 500);
  assert.equal(w.samples[0], 2);
  assert.equal(w.samples[15999], 3);
  // partial trim of the head chunk
  b.push({ startPtsMs: 1500, sampleRate: 16000, samples: new Float32Array(4000).fill(4) });
  const w2 = b.snapshot()!;
  assert.equal(w2.samples.length, 16000);
  assert.equal(w2.startPtsMs, 750);
  assert.equal(w2.endPtsMs, 1750);
  assert.equal(w2.samples[0], 2);
  b.resize(0.5);
  assert.equal(b.snapshot()!.samples.length, 8000);
  assert.equal(b.durationMs, 500);
  b.clear();
  assert.equal(b.snapshot(), undefined);
});

test('rms of silence is 0 and of a full-scale square wave is 1', () => {
  assert.equal(rms(new Float32Array(100)), 0);
  const sq = new Float32Array(100).map((_, i) => (i % 2 ? 1 : -1));
  assert.equal(rms(sq), 1);
  assert.equal(rms(new Float32Array(0)), 0);
});

test('frames age out by stream time: an audio-only stretch stops carrying the last video frames', () => {
  const b = new FrameBuffer(8);
  for (let i = 0; i < 8; i++) b.push(frame(i * 500)); // 0 … 3500
  // video stops at 3.5 s; audio carries stream time on to 10 s; the window is 4 s
  assert.equal(b.prune(6000, 4000), 4, 'frames before 2 s are gone');
  assert.deepEqual(b.snapshot().map((f) => f.ptsMs), [2000, 2500, 3000, 3500]);
  b.prune(10_000, 4000);
  assert.equal(b.size, 0, 'no frame older than the window is ever sent');
});

test('media ahead of stream time (left from before a backwards timestamp reset) is dropped', () => {
  const b = new FrameBuffer(8);
  for (const pts of [50_000, 50_500, 1000]) b.push(frame(pts));
  b.prune(1000, 4000);
  assert.deepEqual(b.snapshot().map((f) => f.ptsMs), [1000]);
  const a = new AudioBuffer(4);
  a.push({ startPtsMs: 50_000, sampleRate: 16000, samples: new Float32Array(16000).fill(0.1) });
  a.push({ startPtsMs: 1000, sampleRate: 16000, samples: new Float32Array(1600).fill(0.1) });
  a.prune(1100, 4000);
  const w = a.snapshot()!;
  assert.equal(w.samples.length, 1600);
  assert.ok(w.startPtsMs >= 0, `window starts at ${w.startPtsMs}`);
});

test('audio ages out by stream time once it stops (video-only stretch)', () => {
  const a = new AudioBuffer(2);
  for (let i = 0; i < 20; i++) a.push({ startPtsMs: i * 100, sampleRate: 16000, samples: new Float32Array(1600).fill(0.1) });
  assert.equal(a.durationMs, 2000);
  a.prune(3050, 2000); // chunks ending before 1.05 s are gone; 1.0–2.0 s stays
  assert.equal(Math.round(a.durationMs), 1000);
  a.prune(5000, 2000);
  assert.equal(a.snapshot(), undefined);
});
