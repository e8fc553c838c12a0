/**
 * start → stop → start on the SAME data channel (the orchestrator reuses `<id>-data` names): the second
 * stream's records must reach a subscriber that stayed connected across the restart. Depends on the
 * trickle publisher continuing at the channel's next sequence number instead of 0 (trickle helper's fix).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStartParams } from '../../src/config/params.js';
import { createSessionFactory } from '../../src/pipeline/session.js';
import { TrickleServer } from '../../src/trickle/server.js';
import { TricklePublisher } from '../../src/trickle/publisher.js';
import { makeTestSegments } from '../helpers/media.js';
import { fakeEngineBackend } from '../helpers/model.js';
import { collectChannel } from '../helpers/pipeline.js';
import { sleep, waitFor } from '../helpers/wait.js';

const backendFor = fakeEngineBackend;

test('start → stop → start on the same data channel: the new stream’s first records reach a live subscriber', { timeout: 60_000 }, async (t) => {
  const backend = await backendFor(t);
  const segs = await makeTestSegments({ durationS: 3, fps: 10, width: 160, height: 120, gopS: 1, audio: 'aac' });
  const trickle = new TrickleServer();
  await trickle.listen();
  t.after(() => trickle.close());
  trickle.createChannel('in', 'video/MP2T');
  trickle.createChannel('in-data', 'application/jsonl');
  const data = collectChannel(trickle.channelUrl('in-data'));
  t.after(() => data.stop());
  const factory = createSessionFactory({ backend, flushTimeoutMs: 3000 });
  for (const id of ['first', 'second']) {
    const s = factory({
      streamId: id,
      subscribeUrl: trickle.channelUrl('in'),
      dataUrl: trickle.channelUrl('in-data'),
      params: parseStartParams({ generate_every_s: 1 }).params,
      extraParams: {},
    });
    await s.start();
    const input = new TricklePublisher({ url: trickle.channelUrl('in'), mimeType: 'video/MP2T' });
    for (const seg of segs) await input.publish(seg);
    await waitFor(`a record of stream ${id}`, () => data.records.some((r) => r.stream_id === id), 20_000);
    await s.stop('stopped');
    await s.done;
    await input.close().catch(() => undefined);
    // the input channel is re-created for the next stream; the data channel and its subscriber stay
    if (trickle.hasChannel('in')) trickle.deleteChannel('in');
    trickle.createChannel('in', 'video/MP2T');
    await sleep(50);
  }
  assert.ok(data.records.some((r) => r.stream_id === 'second'));
});
