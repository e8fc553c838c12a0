/**
 * The data channel stamps publish-time counters itself: records dropped past the queue's bound are
 * reported on the next record it queues (`stats.records_dropped`), with no callback from the cycle
 * code that built the record.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rootLogger } from '../../src/log.js';
import { DataChannel } from '../../src/pipeline/data-channel.js';
import { errorRecord } from '../../src/pipeline/cycle.js';
import { closedPort } from '../helpers/model.js';
import { collectChannel } from '../helpers/pipeline.js';
import { startTrickleServer } from '../helpers/trickle.js';
import { waitFor } from '../helpers/wait.js';

type TestContext = { after: (fn: () => Promise<void>) => void };

/**
 * A DataChannel (bound of 2 records, no batching) whose data server is down: it points at a port with
 * nothing listening. `serverUp()` then starts a trickle server on that port with the channel and a
 * subscriber reading it, both closed when the test ends.
 */
async function channelDuringOutage(t: TestContext) {
  const port = await closedPort();
  const errors: string[] = [];
  const ch = new DataChannel({ streamId: 's', url: `http://127.0.0.1:${port}/data`, maxRecords: 2, batchMs: 0, log: rootLogger(), onError: (code) => errors.push(code), onPublished: () => undefined });
  const serverUp = async () => {
    const server = await startTrickleServer({ port });
    server.createChannel('data', 'application/jsonl');
    const sub = collectChannel(`${server.url.replace(/\/$/, '')}/data`);
    t.after(async () => {
      await sub.stop();
      await server.close();
    });
    return sub;
  };
  return { ch, errors, serverUp };
}

const rec = (n: number) => errorRecord('s', { id: `c${n}`, seq: n }, 'engine_error', `cycle ${n}`, { stats: { skipped_cycles: 0, records_dropped: 0 } });

test('records dropped past the bound while the server is down are counted and stamped on the next record queued', async (t) => {
  const { ch, errors, serverUp } = await channelDuringOutage(t);
  for (let n = 1; n <= 5; n++) ch.publish([rec(n)]);
  await waitFor('the outage reported once', () => errors.length === 1, 5000);
  assert.deepEqual(errors, ['data_publish_failed']);
  const sub = await serverUp();
  await waitFor('the two records the bound kept', () => sub.records.length >= 2, 10_000);
  await ch.close(2000);
  const got = sub.records.map((r) => ({ seq: r.cycle_seq, dropped: (r.stats as { records_dropped: number }).records_dropped }));
  assert.deepEqual(got.map((g) => g.seq), [4, 5], 'the newest two survive');
  assert.ok(got.every((g) => g.dropped >= 1), `each survivor reports the drops before it: ${JSON.stringify(got)}`);
  assert.equal(ch.counters().records_dropped, 3);
});

test('partial records are best effort: during an outage a waiting partial is superseded by the final record, counted as partials_dropped, never as records_dropped', async (t) => {
  const { ch, errors, serverUp } = await channelDuringOutage(t);
  const partial = (n: number, seq: number) => ({ type: 'partial' as const, stream_id: 's', timestamp_ms: 1, cycle_id: `c${n}`, cycle_seq: n, partial_seq: seq, text: `p${seq}` });
  ch.publish([rec(1)]);
  await waitFor('the outage', () => errors.length === 1, 5000);
  ch.publish([partial(2, 1)]);
  ch.publish([partial(2, 2)]);
  ch.publish([rec(2)]);
  assert.equal(ch.counters().partials_dropped, 2, 'each superseded by what came next');
  ch.publish([partial(3, 1)]); // over the bound of two: the partial goes, not record 1
  assert.equal(ch.counters().partials_dropped, 3);
  assert.equal(ch.counters().records_dropped, 0);
  const sub = await serverUp();
  await waitFor('the records', () => sub.records.length >= 2, 10_000);
  await ch.close(2000);
  assert.deepEqual(sub.records.map((r) => `${String(r.type)}:${String(r.cycle_seq)}`), ['error:1', 'error:2']);
  assert.equal(ch.counters().partials_dropped, 3);
  assert.equal(ch.counters().records_dropped, 0);
  assert.equal((sub.records[1]!.stats as { records_dropped: number }).records_dropped, 0);
});
