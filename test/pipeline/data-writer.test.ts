import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TrickleServer } from '../../src/trickle/server.js';
import { TricklePublisher } from '../../src/trickle/publisher.js';
import { SegmentQueue, type SegmentSink } from '../../src/pipeline/data-writer.js';
import { collectChannel } from '../helpers/pipeline.js';
import { waitFor, sleep } from '../helpers/wait.js';

const line = (i: number) => JSON.stringify({ type: 'generation', cycle_id: i, text: `record ${i}` }) + '\n';
const ids = (records: Array<Record<string, unknown>>) => records.map((r) => r.cycle_id as number);
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

test('records ready within the batch window share one segment, in order, one object per line', async (t) => {
  const server = new TrickleServer();
  await server.listen();
  t.after(() => server.close());
  server.createChannel('data', 'application/jsonl');
  const url = server.channelUrl('data');
  const col = collectChannel(url);
  const q = new SegmentQueue({ sink: new TricklePublisher({ url, mimeType: 'application/jsonl' }), batchMs: 100 });
  for (let i = 1; i <= 5; i++) q.enqueue(line(i));
  await waitFor('5 records', () => col.records.length >= 5);
  assert.deepEqual(ids(col.records), range(1, 5));
  assert.equal(col.segments.length, 1, 'one segment for records enqueued together');
  await sleep(250);
  q.enqueue(line(6));
  await waitFor('record 6', () => col.records.length >= 6);
  assert.equal(col.segments.length, 2);
  await q.close(2000);
  await col.stop();
  assert.equal(q.stats().dropped, 0);
});

test('no record is lost or reordered across a data-channel outage: channel deleted, server down 5 s, channel re-created', async (t) => {
  let server = new TrickleServer();
  await server.listen();
  const port = server.port;
  t.after(() => server.close());
  server.createChannel('data', 'application/jsonl');
  const url = server.channelUrl('data');
  const col1 = collectChannel(url);
  const q = new SegmentQueue({
    sink: new TricklePublisher({ url, mimeType: 'application/jsonl', retryDelayMs: 50 }),
    batchMs: 20,
    retryMinMs: 50,
    retryMaxMs: 500,
  });
  for (let i = 1; i <= 10; i++) {
    q.enqueue(line(i));
    await sleep(10);
  }
  await waitFor('first 10 records', () => col1.records.length >= 10);

  server.deleteChannel('data');
  await col1.ended; // the subscriber sees the channel go away
  for (let i = 11; i <= 20; i++) q.enqueue(line(i));
  await waitFor('a failed publish', () => q.stats().publishFailures > 0);

  await server.close();
  for (let i = 21; i <= 30; i++) {
    q.enqueue(line(i));
    await sleep(500); // 5 s of downtime while records keep coming
  }
  assert.equal(q.stats().queued, 20, 'everything since the outage is waiting');

  server = new TrickleServer({ port });
  await server.listen();
  server.createChannel('data', 'application/jsonl');
  const col2 = collectChannel(url);
  await waitFor('the backlog', () => col2.records.length >= 20, 15_000);
  for (let i = 31; i <= 35; i++) q.enqueue(line(i));
  await waitFor('new records after recovery', () => col2.records.length >= 25);
  await q.close(2000);
  await col2.stop();

  assert.deepEqual([...ids(col1.records), ...ids(col2.records)], range(1, 35));
  assert.equal(q.stats().dropped, 0);
  assert.equal(q.stats().queued, 0);
});

/** Fault injection: a sink whose publishes fail until `healthy` is set. */
class FaultySink implements SegmentSink {
  healthy = false;
  bodies: string[] = [];
  async publish(data: Buffer | string): Promise<void> {
    if (!this.healthy) throw new Error('injected publish failure');
    this.bodies.push(data.toString());
  }
  async close(): Promise<void> {}
}

test('past the bound the oldest waiting records are dropped, counted once, and the rest still go out in order', async () => {
  const sink = new FaultySink();
  const dropped: number[] = [];
  const q = new SegmentQueue({ sink, maxItems: 5, batchMs: 1, retryMinMs: 10, retryMaxMs: 20, onDropped: (n) => dropped.push(n) });
  for (let i = 1; i <= 8; i++) q.enqueue(line(i));
  await waitFor('a failed attempt', () => q.stats().publishFailures > 0);
  assert.equal(q.stats().dropped, 3);
  assert.equal(q.takeDropped(), 3);
  assert.equal(q.takeDropped(), 0, 'the drop count is reported once');
  sink.healthy = true;
  await waitFor('delivery', () => q.stats().queued === 0);
  const got = sink.bodies.join('').trim().split('\n').map((l) => (JSON.parse(l) as { cycle_id: number }).cycle_id);
  assert.deepEqual(got, [4, 5, 6, 7, 8]);
  assert.equal(dropped.reduce((a, b) => a + b, 0), 3);
  await q.close(100);
});

test('the byte bound applies too, and close() gives up after its deadline counting what is left', async () => {
  const sink = new FaultySink();
  const q = new SegmentQueue({ sink, maxItems: 1000, maxBytes: 300, batchMs: 1, retryMinMs: 10, retryMaxMs: 20 });
  const big = (i: number) => JSON.stringify({ cycle_id: i, text: 'x'.repeat(100) }) + '\n';
  for (let i = 1; i <= 6; i++) q.enqueue(big(i));
  assert.ok(q.stats().queuedBytes <= 300);
  const before = q.stats().dropped;
  assert.ok(before >= 3);
  const t0 = Date.now();
  await q.close(200);
  assert.ok(Date.now() - t0 < 2000);
  assert.equal(q.stats().dropped, 6);
  q.enqueue(big(7));
  assert.equal(q.stats().dropped, 7, 'records after close are counted as dropped');
});

test('an idle data channel is kept alive by zero-byte segments against a server that sweeps idle channels', async (t) => {
  // Stand-in for go-livepeer's sweep (5 min idle, checked every minute), scaled down.
  const server = new TrickleServer({ idleTimeoutMs: 400, sweepIntervalMs: 50 });
  await server.listen();
  t.after(() => server.close());
  server.createChannel('kept', 'application/jsonl');
  server.createChannel('unkept', 'application/jsonl');
  const col = collectChannel(server.channelUrl('kept'));
  const kept = new SegmentQueue({ sink: new TricklePublisher({ url: server.channelUrl('kept'), mimeType: 'application/jsonl' }), keepaliveMs: 100 });
  const unkept = new SegmentQueue({ sink: new TricklePublisher({ url: server.channelUrl('unkept'), mimeType: 'application/jsonl' }) });
  kept.enqueue(line(1));
  await waitFor('record 1', () => col.records.length >= 1);
  await sleep(1200); // three idle timeouts with nothing to publish
  assert.equal(server.hasChannel('unkept'), false, 'the sweep is real: a silent channel goes');
  assert.equal(server.hasChannel('kept'), true, 'the keepalive counts as a write');
  assert.ok(kept.stats().keepalives >= 5, `keepalives ${kept.stats().keepalives}`);
  // What the server received: empty segments, no lines (the gateway turns them into no SSE message).
  assert.ok(col.segments.filter((s) => s === '').length >= 5);
  assert.deepEqual(ids(col.records), [1]);
  kept.enqueue(line(2));
  await waitFor('record 2 after keepalives', () => col.records.length >= 2);
  assert.deepEqual(ids(col.records), [1, 2]);
  assert.equal(kept.stats().published, 2, 'keepalives are not records');
  await kept.close(2000);
  await unkept.close(500);
  await col.stop();
});

// ---- droppable items (partial-text records, issue 15)

const partial = (i: number) => JSON.stringify({ type: 'partial', partial_seq: i }) + '\n';

test('a waiting droppable item is superseded by any later item, counted apart from record drops', async () => {
  const sink = new FaultySink();
  const droppable: number[] = [];
  const q = new SegmentQueue({ sink, batchMs: 1, retryMinMs: 10, retryMaxMs: 20, onDroppableDropped: (n) => droppable.push(n) });
  q.enqueue(line(1));
  await waitFor('a failed attempt', () => q.stats().publishFailures > 0);
  q.enqueue(partial(1), { droppable: true });
  q.enqueue(partial(2), { droppable: true }); // supersedes partial 1
  q.enqueue(line(2)); // supersedes partial 2: the final record carries the whole text
  q.enqueue(partial(3), { droppable: true }); // nothing after it: it stays
  assert.equal(q.stats().droppableDropped, 2);
  assert.equal(q.takeDropped(), 0, 'superseded partials are not record drops');
  sink.healthy = true;
  await waitFor('delivery', () => q.stats().queued === 0);
  const got = sink.bodies.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(got.map((r) => r.cycle_id ?? `p${String(r.partial_seq)}`), [1, 2, 'p3']);
  assert.deepEqual(droppable, [1, 1]);
  assert.equal(q.stats().dropped, 0);
  await q.close(100);
});

test('past the bound a droppable item is dropped before any record, and never pushes one out', async () => {
  const sink = new FaultySink();
  const q = new SegmentQueue({ sink, maxItems: 3, batchMs: 1, retryMinMs: 10, retryMaxMs: 20 });
  for (let i = 1; i <= 3; i++) q.enqueue(line(i));
  await waitFor('a failed attempt', () => q.stats().publishFailures > 0);
  q.enqueue(partial(1), { droppable: true });
  assert.equal(q.stats().droppableDropped, 1, 'the partial went, not record 1');
  assert.equal(q.stats().dropped, 0);
  q.enqueue(line(4));
  assert.equal(q.stats().dropped, 1, 'records still obey the bound among themselves');
  sink.healthy = true;
  await waitFor('delivery', () => q.stats().queued === 0);
  const got = sink.bodies.join('').trim().split('\n').map((l) => (JSON.parse(l) as { cycle_id: number }).cycle_id);
  assert.deepEqual(got, [2, 3, 4]);
  await q.close(100);
});

/** Fault injection: each publish waits until the test fails or passes it. */
class GatedSink implements SegmentSink {
  bodies: string[] = [];
  private gates: Array<{ ok: () => void; fail: (e: Error) => void }> = [];
  async publish(data: Buffer | string): Promise<void> {
    await new Promise<void>((ok, fail) => this.gates.push({ ok, fail }));
    this.bodies.push(data.toString());
  }
  waiting(): number {
    return this.gates.length;
  }
  fail(): void {
    this.gates.shift()?.fail(new Error('injected publish failure'));
  }
  pass(): void {
    this.gates.shift()?.ok();
  }
  async close(): Promise<void> {}
}

test('a droppable item whose publish failed is dropped when later items wait behind it, so it never delays them', async () => {
  const sink = new GatedSink();
  const q = new SegmentQueue({ sink, batchMs: 1, retryMinMs: 10, retryMaxMs: 20 });
  q.enqueue(partial(1), { droppable: true });
  await waitFor('the partial in flight', () => sink.waiting() === 1);
  q.enqueue(line(1)); // the partial is in flight: nothing to supersede yet
  sink.fail(); // its segment fails: it comes back with the record behind it
  await waitFor('the retry', () => sink.waiting() === 1);
  sink.pass();
  await waitFor('delivery', () => q.stats().queued === 0);
  const got = sink.bodies.join('').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(got.map((r) => r.type), ['generation'], 'only the record went out');
  assert.equal(q.stats().droppableDropped, 1);
  await q.close(100);
});
