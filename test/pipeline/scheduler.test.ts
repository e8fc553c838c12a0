import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CycleSlot, StreamTimeScheduler } from '../../src/pipeline/scheduler.js';

function recorder(intervalMs: number) {
  const dues: Array<[number, number]> = [];
  const s = new StreamTimeScheduler({ intervalMs, onDue: (pts, n) => dues.push([pts, n]) });
  return { s, dues };
}

test('a cycle is due every interval of stream time (media pts), whatever the wall clock does', () => {
  const { s, dues } = recorder(1000);
  for (let pts = 10_000; pts <= 14_000; pts += 100) s.observe(pts);
  assert.deepEqual(dues.map((d) => d[0]), [11_000, 12_000, 13_000, 14_000]);
  assert.ok(dues.every((d) => d[1] === 1));
});

test('out-of-order timestamps never move stream time backwards', () => {
  const { s, dues } = recorder(1000);
  s.observe(0);
  s.observe(900);
  s.observe(500);
  s.observe(1000);
  s.observe(1001);
  assert.deepEqual(dues, [[1000, 1]]);
});

test('a cadence change reschedules at once from the last due point', () => {
  const { s, dues } = recorder(4000);
  s.observe(0);
  s.observe(2500);
  assert.equal(dues.length, 0);
  s.setInterval(2000); // 0 + 2000 <= 2500: due now
  assert.deepEqual(dues, [[2500, 1]]);
  s.observe(3900);
  assert.equal(dues.length, 1, 'the new cadence keeps its grid: next due at 4000');
  s.observe(4000);
  assert.deepEqual(dues.at(-1), [4000, 1]);
  s.setInterval(10_000); // longer cadence: next due moves out to 14000
  s.observe(9000);
  assert.equal(dues.length, 2);
  s.observe(14_000);
  assert.deepEqual(dues.at(-1), [14_000, 1]);
});

test('a leap over several due points reports them in one call; a discontinuity re-anchors', () => {
  const { s, dues } = recorder(1000);
  s.observe(0);
  s.observe(3500);
  assert.deepEqual(dues, [[3500, 3]]);
  assert.equal(s.nextDueMs, 4000);
  s.observe(-50_000); // timestamps reset
  assert.equal(dues.length, 1);
  s.observe(-49_000);
  assert.deepEqual(dues.at(-1), [-49_000, 1]);
});

test('a timestamp reset a few seconds back (an input restarting its clock) re-anchors instead of freezing stream time', () => {
  const { s, dues } = recorder(4000);
  s.observe(1400);
  s.observe(9400); // 8 s of media: one due point at 5400 passed
  assert.equal(dues.length, 1);
  s.observe(1400); // the input starts over at its old first timestamp
  s.observe(5399);
  assert.equal(dues.length, 1);
  s.observe(5400);
  assert.deepEqual(dues.at(-1), [5400, 1]);
});

test('a window never spans a timestamp discontinuity: jumps backwards past 3 s or forwards past 10 s break it', () => {
  const s = new StreamTimeScheduler({ intervalMs: 30_000, onDue: () => undefined });
  assert.equal(s.breaksWindow(5000), false, 'nothing seen yet');
  s.observe(20_000);
  assert.equal(s.breaksWindow(19_000), false, 'A/V interleaving');
  assert.equal(s.breaksWindow(16_000), true, 'reset backwards');
  assert.equal(s.breaksWindow(29_000), false, 'a small gap');
  assert.equal(s.breaksWindow(31_000), true, 'a forward leap breaks the window even though the 30 s schedule tolerates it');
});

/**
 * Simulates wall time: ffmpeg releases audio in bursts (here 1 s of audio every 1 s of wall time,
 * delivered as ten 100 ms chunks within 20 ms), a 500 ms cadence, and a model that answers in 300 ms.
 * The model keeps up (2 cycles of 300 ms per second), so nothing should be skipped.
 */
function burstyRun(cycleMs: number): { launched: number[]; skipped: number } {
  const slot = new CycleSlot();
  const launched: number[] = [];
  let skipped = 0;
  let wall = 0;
  let busyUntil = Number.POSITIVE_INFINITY;
  const launch = () => {
    slot.started();
    launched.push(wall);
    busyUntil = wall + cycleMs;
  };
  const s = new StreamTimeScheduler({
    intervalMs: 500,
    onDue: (_pts, n) => {
      const d = slot.due(n);
      skipped += d.skipped;
      if (d.launch) launch();
    },
  });
  const advance = (to: number) => {
    while (slot.inFlight && busyUntil <= to) {
      wall = busyUntil;
      busyUntil = Number.POSITIVE_INFINITY;
      if (slot.finished()) launch();
    }
    wall = to;
  };
  s.observe(0);
  for (let burst = 0; burst < 10; burst++) {
    for (let c = 1; c <= 10; c++) {
      advance(burst * 1000 + 1000 + c * 2);
      s.observe(burst * 1000 + c * 100);
    }
  }
  advance(20_000);
  return { launched, skipped };
}

test('bursty input: a due point passing while the burst arrives waits for the running cycle instead of being skipped', () => {
  const r = burstyRun(300);
  assert.equal(r.skipped, 0);
  assert.equal(r.launched.length, 20, 'one cycle per 500 ms of the 10 s of audio');
});

test('a model slower than the cadence still gets skips counted, beyond the one catch-up', () => {
  const r = burstyRun(1400); // 1.4 s per cycle, 2 due points per second
  assert.ok(r.skipped > 0);
  assert.equal(r.launched.length + r.skipped, 20, 'every due point either ran or was counted as skipped');
});

test('the cycle slot: one in flight, one waiting, the rest skipped', () => {
  const slot = new CycleSlot();
  assert.deepEqual(slot.due(1), { launch: true, skipped: 0 });
  slot.started();
  assert.deepEqual(slot.due(1), { launch: false, skipped: 0 });
  assert.deepEqual(slot.due(2), { launch: false, skipped: 2 }, 'the older waiting point and one of the two new are skipped');
  assert.equal(slot.finished(), true);
  slot.started();
  assert.equal(slot.finished(), false);
  assert.deepEqual(slot.due(3), { launch: true, skipped: 2 });
});

test('video lagging audio by seconds (separate decoders under load) is not a reset: only a track going back on itself is', () => {
  const { s, dues } = recorder(2000);
  for (let pts = 0; pts <= 6000; pts += 100) s.observe(pts, 'audio');
  assert.equal(s.breaksWindow(1000, 'video'), false, 'the first video frame, 5 s behind the audio');
  s.observe(1000, 'video');
  s.observe(1500, 'video');
  assert.equal(s.streamTimeMs, 6000, 'stream time was not re-anchored');
  assert.deepEqual(dues.map((d) => d[0]), [2000, 4000, 6000]);
  assert.equal(s.breaksWindow(900, 'video') || s.breaksWindow(5500, 'audio'), false, 'small steps back on a track are interleaving');
  assert.equal(s.breaksWindow(1000, 'audio'), true, 'audio going 5 s back on itself is a reset');
});
