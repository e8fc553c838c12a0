/**
 * Interop with a strict go-livepeer-like configuration: base path /ai/trickle/, autocreate off,
 * channels created in-process by the "orchestrator" (createChannel) and confirmed with
 * `POST /{ch}` + `Expect-Content`. Both directions: our clients against that server, and the Go
 * clients' wire behaviour (scripted with raw HTTP) against our clients.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Readable } from 'node:stream';
import type { TrickleError } from '../../src/trickle/errors.js';
import { TricklePublisher } from '../../src/trickle/publisher.js';
import { TrickleSubscriber } from '../../src/trickle/subscriber.js';
import { RawGet, RawPost, rawRequest, sleep, startTrickleServer } from '../helpers/trickle.js';

async function readAll(body: Readable): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c as Buffer);
  return Buffer.concat(parts).toString();
}

async function strictServer() {
  return startTrickleServer({ basePath: '/ai/trickle/', autocreate: false });
}

test('strict server: POST /{ch} with Expect-Content confirms an orchestrator-created channel and never creates one', async (t) => {
  const srv = await strictServer();
  t.after(() => srv.close());
  srv.createChannel('m1-out', 'video/MP2T');
  const ok = await rawRequest('POST', srv.channelUrl('m1-out'), { headers: { 'Expect-Content': 'video/MP2T' } });
  assert.equal(ok.status, 200);
  const missing = await rawRequest('POST', srv.channelUrl('m1-data'), { headers: { 'Expect-Content': 'application/jsonl' } });
  assert.equal(missing.status, 404);
  assert.equal(srv.hasChannel('m1-data'), false);

  // our publisher cannot resurrect a channel that does not exist (GL #3251)
  const pub = new TricklePublisher({ url: srv.channelUrl('m1-data'), mimeType: 'application/jsonl' });
  await assert.rejects(pub.publish('[]\n'), (e: TrickleError) => e.code === 'trickle_not_found');
  assert.equal(srv.hasChannel('m1-data'), false);
  await pub.close();
});

test('our publisher → Go-style subscriber: start -1, Seq/Latest headers, 470 → jump to Latest, DELETE-first close ends the stream', async (t) => {
  const srv = await strictServer();
  t.after(() => srv.close());
  srv.createChannel('m1-out', 'video/MP2T');
  const url = srv.channelUrl('m1-out');
  const pub = new TricklePublisher({ url, mimeType: 'video/mp2t', deleteOnClose: true });

  const edge = new RawGet(`${url}/-1`); // Go subscriber default start
  await sleep(50);
  await pub.publish('seg0');
  const r0 = await edge.done;
  assert.equal(r0.headers['lp-trickle-seq'], '0');
  assert.equal(r0.headers['content-type'], 'video/MP2T');
  for (let i = 1; i < 8; i++) await pub.publish(`seg${i}`);

  // a Go subscriber that fell behind: 470 with Latest, then SetSeq(Latest) waits for the next segment
  const old = await rawRequest('GET', `${url}/1`);
  assert.equal(old.status, 470);
  assert.equal(old.headers['lp-trickle-latest'], '8');
  const atLatest = new RawGet(`${url}/${old.headers['lp-trickle-latest']}`);
  await sleep(50);
  assert.equal(atLatest.responded, false);
  await pub.publish('seg8');
  assert.equal((await atLatest.done).body, 'seg8');

  const waiting = new RawGet(`${url}/9`);
  await sleep(50);
  await pub.close();
  const end = await waiting.done;
  assert.equal(end.headers['lp-trickle-closed'], 'terminated', 'the Go subscriber sees EOS');
  assert.equal(end.body, '');
  assert.equal(srv.hasChannel('m1-out'), false);
});

test('Go-style publisher → our subscriber: preconnected POSTs with hard-coded video/MP2T, DELETE then close of the preconnect', async (t) => {
  const srv = await strictServer();
  t.after(() => srv.close());
  srv.createChannel('m1', 'video/MP2T');
  const url = srv.channelUrl('m1');
  const sub = new TrickleSubscriber({ url, start: -1, retryDelayMs: 20 });
  const received: Array<[number, string]> = [];
  const reading = (async () => {
    for await (const seg of sub) received.push([seg.seq, await readAll(seg.body)]);
  })();
  await sleep(50);

  // go-livepeer's publisher preconnects seq 0 in its constructor and N+1 on every Next()
  let pending = new RawPost(`${url}/0`, { 'Content-Type': 'video/MP2T' });
  for (let i = 0; i < 4; i++) {
    const active = pending;
    pending = new RawPost(`${url}/${i + 1}`, { 'Content-Type': 'video/MP2T' });
    await active.write(`ts-${i}-a`);
    await sleep(10);
    await active.write(`|ts-${i}-b`);
    const r = await active.end();
    assert.equal(r.status, 200);
    assert.equal(r.headers['lp-trickle-seq'], String(i));
  }
  // Close(): DELETE the channel first, then close the preconnected pipe (GL #3824 ordering)
  assert.equal((await rawRequest('DELETE', url)).status, 200);
  const pre = await pending.response;
  assert.equal(pre.headers['lp-trickle-closed'], 'terminated');
  pending.destroy();
  await reading;
  assert.deepEqual(received, [
    [0, 'ts-0-a|ts-0-b'],
    [1, 'ts-1-a|ts-1-b'],
    [2, 'ts-2-a|ts-2-b'],
    [3, 'ts-3-a|ts-3-b'],
  ]);
  await sub.close();
});
