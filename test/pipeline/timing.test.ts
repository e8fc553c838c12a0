/**
 * The timing paths — data-channel retry backoff, idle keepalive, events heartbeat cadence — under
 * node:test's mock timers: hours of backoff and cadence are checked in milliseconds, against a sink
 * double that records when each publish was attempted (no sockets, no real waiting).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SegmentQueue, type SegmentSink } from '../../src/pipeline/data-writer.js';
import { EventsWriter } from '../../src/pipeline/events.js';

/** Test double of a trickle publisher: fails the first `failures` publishes, records every attempt's time. */
class RecordingSink implements SegmentSink {
  readonly attempts: Array<{ at: number; body: string }> = [];
  constructor(private failures: number) {}
  async publish(data: Buffer | string): Promise<void> {
    this.attempts.push({ at: Date.now(), body: data.toString() });
    if (this.failures-- > 0) throw new Error('server down');
  }
  async close(): Promise<void> {}
}

/** Advances mocked time in steps, letting promise continuations run between them. */
async function advance(t: { mock: { timers: { tick(ms: number): void } } }, ms: number, step = 10): Promise<void> {
  for (let done = 0; done < ms; done += step) {
    t.mock.timers.tick(step);
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  }
}

test('a failing data channel is retried with doubling backoff, capped, and the record goes out once it succeeds', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 0 });
  const sink = new RecordingSink(5);
  const q = new SegmentQueue({ sink, batchMs: 0, retryMinMs: 100, retryMaxMs: 400 });
  q.enqueue('{"n":1}\n');
  await advance(t, 3000);
  const at = sink.attempts.map((a) => a.at);
  const gaps = at.slice(1).map((x, i) => x - at[i]!);
  assert.equal(sink.attempts.length, 6, `five failures then the success: ${at.join(' ')}`);
  // 100, 200, 400, then capped at 400 (±one 10 ms step of the clock).
  for (const [i, want] of [100, 200, 400, 400, 400].entries()) assert.ok(Math.abs(gaps[i]! - want) <= 10, `gap ${i}: ${gaps[i]} ms, want ${want}`);
  assert.equal(q.stats().published, 1);
  assert.equal(q.stats().publishFailures, 5);
  await q.close(100);
});

test('an idle data channel gets a zero-byte keepalive every keepaliveMs, and a record resets the countdown', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 0 });
  const sink = new RecordingSink(0);
  const q = new SegmentQueue({ sink, batchMs: 0, keepaliveMs: 60_000 });
  await advance(t, 185_000, 1000); // three idle minutes
  assert.deepEqual(sink.attempts.map((a) => [a.at, a.body]), [[60_000, ''], [120_000, ''], [180_000, '']]);
  q.enqueue('{"n":1}\n');
  await advance(t, 59_000, 1000);
  assert.equal(sink.attempts.filter((a) => a.body === '').length, 3, 'the record reset the idle countdown');
  assert.equal(q.stats().keepalives, 3);
  await q.close(100);
});

test('events: a heartbeat at start and then every heartbeatMs, each followed by the status tick', async (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 0 });
  const sink = new RecordingSink(0);
  let ticks = 0;
  const w = new EventsWriter({ sink, streamId: 's', heartbeatMs: 10_000, heartbeat: () => ({ urls: {}, dimensions: { width: 0, height: 0 }, fps: {} }) as never, onTick: () => void ticks++ });
  w.start();
  await advance(t, 60_500, 500);
  const beats = sink.attempts.filter((a) => a.body.includes('"heartbeat"')).map((a) => a.at);
  assert.equal(beats.length, 7, `at 0 and every 10 s for a minute: ${beats.join(' ')}`);
  assert.equal(ticks, beats.length, 'each heartbeat is followed by the status tick');
  await w.close(100);
});
