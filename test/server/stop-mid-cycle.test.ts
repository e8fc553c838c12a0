/**
 * Stop during a cycle, through the control API: the model request in flight is aborted (the engine sees
 * its connection close), the cycle's record says so, and the server is IDLE again — nothing hangs.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { OpenAIBackend } from '../../src/model/openai.js';
import { createSessionFactory } from '../../src/pipeline/session.js';
import { TricklePublisher } from '../../src/trickle/publisher.js';
import { TrickleServer } from '../../src/trickle/server.js';
import { rootLogger } from '../../src/log.js';
import { makeTestSegments, publishSegments } from '../helpers/media.js';
import { startFakeEngine, TEST_AUDIO_PAD_SAMPLES } from '../helpers/model.js';
import { collectChannel } from '../helpers/pipeline.js';
import { request, startTestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/wait.js';

describe('stop during a cycle', () => {
  it('aborts the hung model request, publishes cycle_aborted and returns to IDLE', { timeout: 60_000 }, async () => {
    const engine = await startFakeEngine();
    const trickle = new TrickleServer({ port: 0, host: '127.0.0.1' });
    await trickle.listen();
    for (const [name, mime] of [['s', 'video/MP2T'], ['s-data', 'application/jsonl']] as const) trickle.createChannel(name, mime);
    const backend = new OpenAIBackend({ baseURL: engine.baseURL, modelId: 'google/gemma-3n-E4B-it', timeoutMs: 60_000, audioPadSamples: TEST_AUDIO_PAD_SAMPLES });
    const srv = await startTestServer({ backend, sessionFactory: createSessionFactory({ backend, logger: rootLogger() }) });
    const data = collectChannel(trickle.channelUrl('s-data'), { start: 0 });
    const input = new TricklePublisher({ url: trickle.channelUrl('s'), mimeType: 'video/MP2T' });
    try {
      await waitFor('engine warm-up', async () => (await request(srv.url, 'GET', '/health')).body.status === 'IDLE');
      engine.setFault({ kind: 'hang' });
      const start = await request(srv.url, 'POST', '/stream/start', {
        gateway_request_id: 'hung',
        subscribe_url: trickle.channelUrl('s'),
        data_url: trickle.channelUrl('s-data'),
        params: { generate_every_s: 1 },
      });
      assert.equal(start.status, 200, start.text);
      await publishSegments(input, await makeTestSegments({ durationS: 4, fps: 30, width: 640, height: 360, gopS: 1, audio: 'aac', toneHz: 440 }));
      await waitFor('a chat request hanging in the engine', () => engine.openChatRequests() === 1, 30_000);

      const t0 = Date.now();
      const stop = await request(srv.url, 'POST', '/stream/stop');
      assert.equal(stop.status, 200);
      assert.ok(Date.now() - t0 < 10_000, `stop took ${Date.now() - t0} ms`);
      await waitFor('the engine to see the request aborted', () => engine.openChatRequests() === 0, 5_000);
      assert.deepEqual((await request(srv.url, 'GET', '/health')).body, { status: 'IDLE' });
      await waitFor('the aborted cycle record', () => data.records.some((r) => r.type === 'error'), 5_000);
      const rec = data.records.find((r) => r.type === 'error') as { error: { code: string } };
      assert.equal(rec.error.code, 'cycle_aborted');
    } finally {
      await input.close();
      await data.stop();
      await srv.close();
      await trickle.close();
      await engine.close();
    }
  });
});
