import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamTimeScheduler } from '../../src/pipeline/scheduler.js';

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
