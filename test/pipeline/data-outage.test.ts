/**
 * No record lost while the data channel hiccups, at the session level: a running stream keeps producing
 * cycles while its data channel (on its own trickle server) is deleted and re-created, and while that
 * server is dead for 5 s and a fresh one comes back on the same port. Every cycle's record arrives
 * exactly once, in order, at subscribers that follow the protocol (a deleted channel ends its readers;
 * a dead server is retried).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TrickleServer } from '../../src/trickle/server.js';
import { makeTestSegments } from '../helpers/media.js';
import { collectChannel, type ChannelCollector, startLoopingStream } from '../helpers/pipeline.js';
import { sleep, waitFor } from '../helpers/wait.js';

test('records published during a data-channel deletion and a 5 s data-server death all arrive exactly once, in order', { timeout: 120_000 }, async (t) => {
  let dataServer = new TrickleServer({ port: 0, host: '127.0.0.1' });
  await dataServer.listen();
  const dataPort = dataServer.port;
  dataServer.createChannel('data', 'application/jsonl');
  const dataUrl = dataServer.channelUrl('data');
  const collectors: ChannelCollector[] = [collectChannel(dataUrl)];
  // The 8 s clip over and over, about 4x real time.
  const clip = await makeTestSegments({ durationS: 8, fps: 15, width: 320, height: 240, gopS: 1, audio: 'aac', toneHz: 440 });
  const s = await startLoopingStream({ streamId: 'outage', dataUrl, clip, paceMs: 250 });
  t.after(async () => {
    await s.close();
    for (const c of collectors) await c.stop();
    await dataServer.close();
  });
  const session = s.session;
  const seqs = () => s.seqs(collectors);
  const started = () => s.completed();

  // A record the server already holds is lost with its channel (deleted) or its server (dead) if no
  // one has read it yet: that is the protocol, not the runner. So each fault is injected when every
  // record published so far has been read and none is in flight (checked and done in one tick).
  const settled = (n: number): boolean => s.settled(collectors, n);
  await waitFor('records before the outage, all read', () => settled(2), 30_000);

  // 1) The orchestrator deletes the data channel and re-creates it a second later.
  dataServer.deleteChannel('data');
  const doneAtDelete = started();
  await waitFor('cycles completing while the channel is gone', () => started() >= doneAtDelete + 2, 30_000);
  dataServer.createChannel('data', 'application/jsonl');
  collectors.push(collectChannel(dataUrl));

  // 2) The data server dies (connections cut, nothing answered, as a killed process) and a new one
  //    comes up on the same port 5 s later with the channel re-created empty. The subscriber that was
  //    reading rides through on retries, as a protocol-following one does, and reads on.
  await waitFor('records on the re-created channel, all read', () => (collectors[1]?.segments.length ?? 0) >= 2 && settled(0), 30_000);
  await dataServer.terminate();
  const doneAtDown = started();
  await sleep(5_000);
  assert.ok(started() >= doneAtDown + 2, 'cycles kept running while the data server was down');
  dataServer = new TrickleServer({ port: dataPort, host: '127.0.0.1' });
  await dataServer.listen();
  dataServer.createChannel('data', 'application/jsonl');

  const last = started();
  await waitFor('every completed cycle delivered', () => seqs().length >= last, 60_000);
  const got = seqs();
  assert.equal(got[0], 1, 'from the first cycle');
  assert.deepEqual(got, [...got].sort((a, b) => a - b), 'in order');
  assert.equal(new Set(got).size, got.length, 'no duplicates');
  for (let i = 1; i < got.length; i++) assert.equal(got[i], got[i - 1]! + 1, `no gap after cycle ${got[i - 1]}`);
  assert.equal(session.status().counters.records_dropped ?? 0, 0, 'nothing dropped past the queue bound');
});
