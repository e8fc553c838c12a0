/**
 * Every channel is let go when a session is done: after `done` — for a stop, for the input's end and
 * for an error — the trickle server serves no request of the runner's on any channel (input GET,
 * output POST, data POST, events POST, control GET). The test's own clients use the other direction
 * of each channel (they publish input and control, and read data and events), so the runner's
 * requests are told apart by method and channel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStartParams } from '../../src/config/params.js';
import { createSessionFactory } from '../../src/pipeline/session.js';
import type { TrickleServer } from '../../src/trickle/server.js';
import { makeTestSegments } from '../helpers/media.js';
import { fakeEngineBackend } from '../helpers/model.js';
import { startPipelineHarness } from '../helpers/pipeline.js';
import { FaultyServer, startTrickleServer } from '../helpers/trickle.js';
import { waitFor } from '../helpers/wait.js';

/** The (method, channel) pairs only the runner uses, given the harness's channel names. */
function runnerRequests(trickle: TrickleServer, base = 'in'): string[] {
  const mine = new Set([`GET ${base}`, `POST ${base}-out`, `POST ${base}-data`, `POST ${base}-events`, `GET ${base}-control`]);
  return trickle.openRequests().map((r) => `${r.method} ${r.channel}`).filter((k) => mine.has(k));
}

async function noneLeft(trickle: TrickleServer): Promise<void> {
  // A client's socket close reaches the server a moment after `done`; then nothing may remain.
  await waitFor(`no runner request left (open: ${runnerRequests(trickle).join(', ')})`, () => runnerRequests(trickle).length === 0, 3000).catch(() => undefined);
  assert.deepEqual(runnerRequests(trickle), []);
}

/** A harness stream that has produced a record (so every channel has been in use). */
async function runningStream(t: Parameters<typeof fakeEngineBackend>[0]) {
  const backend = await fakeEngineBackend(t);
  const segs = await makeTestSegments({ durationS: 2, fps: 10, width: 160, height: 120, gopS: 1, audio: 'aac' });
  const h = await startPipelineHarness({ backend, params: { generate_every_s: 1 } });
  t.after(() => h.close());
  await h.feed(segs);
  await waitFor('a record', () => h.generations().length >= 1, 20_000);
  return h;
}

test('after a stop, the runner holds no request on any of the five channels', async (t) => {
  const h = await runningStream(t);
  assert.ok(runnerRequests(h.trickle).length >= 3, `the runner is connected while running (${runnerRequests(h.trickle).join(', ')})`);
  await h.session.stop('stopped');
  assert.equal((await h.session.done).reason, 'stopped');
  await noneLeft(h.trickle);
});

test('after the input ends, the runner holds no request on any channel', async (t) => {
  const h = await runningStream(t);
  await h.endInput();
  assert.equal((await h.session.done).reason, 'input_ended');
  await noneLeft(h.trickle);
});

test('after an error (the input server keeps failing), the runner holds no request on any channel', { timeout: 60_000 }, async (t) => {
  const backend = await fakeEngineBackend(t);
  const broken = new FaultyServer((_req, res) => {
    res.writeHead(500);
    res.end('boom');
  });
  const brokenBase = await broken.listen();
  const trickle = await startTrickleServer();
  t.after(async () => {
    await trickle.close();
    await broken.close();
  });
  for (const [name, mime] of [['in-out', 'video/MP2T'], ['in-data', 'application/jsonl'], ['in-events', 'application/json'], ['in-control', 'application/json']] as const) {
    trickle.createChannel(name, mime);
  }
  const session = createSessionFactory({ backend, flushTimeoutMs: 3000 })({
    streamId: 'broken-input',
    subscribeUrl: `${brokenBase}/in`,
    publishUrl: trickle.channelUrl('in-out'),
    dataUrl: trickle.channelUrl('in-data'),
    eventsUrl: trickle.channelUrl('in-events'),
    controlUrl: trickle.channelUrl('in-control'),
    params: parseStartParams({ generate_every_s: 1 }).params,
    extraParams: {},
  });
  await session.start();
  await waitFor('the runner connected to its channels', () => runnerRequests(trickle).length >= 1, 5000);
  const end = await session.done;
  assert.equal(end.reason, 'error');
  await noneLeft(trickle);
});
