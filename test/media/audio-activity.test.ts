/**
 * Sound bursts by energy: onset once loud 20 ms frames add up to the minimum burst, offset after the
 * configured quiet, timestamps from the chunks; a click is no burst; a pause shorter than the quiet
 * does not split one; chunk boundaries do not matter.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AudioActivity, type AudioActivityEvent } from '../../src/media/audio-activity.js';

const RATE = 16000;
/** Signal of `ms` at RMS `level` (a square wave: RMS = amplitude). */
const sound = (ms: number, level: number): number[] => Array.from({ length: (ms * RATE) / 1000 }, (_, i) => (i % 40 < 20 ? level : -level));
const quiet = (ms: number): number[] => new Array<number>((ms * RATE) / 1000).fill(0);

function feed(a: AudioActivity, samples: number[], startMs: number, chunkMs = 100): AudioActivityEvent[] {
  const out: AudioActivityEvent[] = [];
  const n = (chunkMs * RATE) / 1000;
  for (let i = 0; i < samples.length; i += n) out.push(...a.push(startMs + (i * 1000) / RATE, Float32Array.from(samples.slice(i, i + n))));
  return out;
}

test('a 1 s burst in silence: onset at its start, offset after the quiet, with the burst span', () => {
  const a = new AudioActivity({ onRms: 0.02, endSilenceMs: 500 });
  const ev = feed(a, [...quiet(1000), ...sound(1000, 0.1), ...quiet(1000)], 10_000);
  assert.deepEqual(ev, [
    { kind: 'onset', ptsMs: 11_000 },
    { kind: 'offset', ptsMs: 12_500, startPtsMs: 11_000, endPtsMs: 12_000 },
  ]);
  assert.equal(a.active, false);
});

test('a click shorter than the minimum burst, and sound below onRms, make no event', () => {
  const a = new AudioActivity({ onRms: 0.02, endSilenceMs: 300 });
  assert.deepEqual(feed(a, [...quiet(200), ...sound(100, 0.5), ...quiet(800), ...sound(2000, 0.01), ...quiet(500)], 0), []);
});

test('a pause shorter than the quiet does not split a burst; chunk size does not change the result', () => {
  const signal = [...sound(400, 0.1), ...quiet(300), ...sound(400, 0.1), ...quiet(700)];
  const a = feed(new AudioActivity({ onRms: 0.02, endSilenceMs: 500 }), signal, 0, 100);
  const b = feed(new AudioActivity({ onRms: 0.02, endSilenceMs: 500 }), signal, 0, 30);
  assert.deepEqual(a, [
    { kind: 'onset', ptsMs: 0 },
    { kind: 'offset', ptsMs: 1600, startPtsMs: 0, endPtsMs: 1100 },
  ]);
  assert.equal(b.length, 2);
  assert.ok(Math.abs((b[1] as { ptsMs: number }).ptsMs - 1600) < 1);
});
