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

test('records dropped past the bound while the server is down are counted and stamped on the next record queued', async (t) => {
  const port = await closedPort();
  const url = `http://127.0.0.1:${port}/data`;
  const errors: string[] = [];
  const ch = new DataChannel({ streamId: 's', url, maxRecords: 2, batchMs: 0, log: rootLogger(), onError: (code) => errors.push(code), onPublished: () => undefined });
  const rec = (n: number) => errorRecord('s', { id: `c${n}`, seq: n }, 'engine_error', `cycle ${n}`, { stats: { skipped_cycles: 0, records_dropped: 0 } });
  for (let n = 1; n <= 5; n++) ch.publish([rec(n)]);
  await waitFor('the outage reported once', () => errors.length === 1, 5000);
  assert.deepEqual(errors, ['data_publish_failed']);
  const server = await startTrickleServer({ port });
  server.createChannel('data', 'application/jsonl');
  const sub = collectChannel(`${server.url.replace(/\/$/, '')}/data`);
  t.after(async () => {
    await sub.stop();
    await server.close();
  });
  await waitFor('the two records the bound kept', () => sub.records.length >= 2, 10_000);
  await ch.close(2000);
  const got = sub.records.map((r) => ({ seq: r.cycle_seq, dropped: (r.stats as { records_dropped: number }).records_dropped }));
  assert.deepEqual(got.map((g) => g.seq), [4, 5], 'the newest two survive');
  assert.ok(got.every((g) => g.dropped >= 1), `each survivor reports the drops before it: ${JSON.stringify(got)}`);
  assert.equal(ch.counters().records_dropped, 3);
});
