/**
 * Trickle server over real HTTP on loopback: one test per spec §7 server case (1–18) plus the
 * deviations the README documents.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RawGet, RawPost, rawRequest, sleep, startTrickleServer, until } from '../helpers/trickle.js';
import { waitFor } from '../helpers/wait.js';
import { ManualClock } from '../helpers/clock.js';

test('case 1: GET on an unknown channel answers 404 "Stream not found"', async (t) => {
  const srv = await startTrickleServer();
  t.after(() => srv.close());
  const r = await rawRequest('GET', `${srv.url}nope/0`);
  assert.equal(r.status, 404);
  assert.equal(r.body, 'Stream not found\n');
  assert.match(String(r.headers['content-type']), /^text\/plain/);
});

test('case 2: POST to an unknown channel is 404 with Connection: close without autocreate, creates it with autocreate', async (t) => {
  const strict = await startTrickleServer();
  const auto = await startTrickleServer({ autocreate: true });
  t.after(async () => {
    await strict.close();
    await auto.close();
  });
  const r1 = await rawRequest('POST', `${strict.url}ch/0`, { headers: { 'Content-Type': 'text/plain' }, body: 'hi' });
  assert.equal(r1.status, 404);
  assert.equal(r1.headers.connection, 'close');
  assert.equal(r1.body, 'Stream not found\n');
  assert.equal(strict.hasChannel('ch'), false);

  const r2 = await rawRequest('POST', `${auto.url}ch/0`, { headers: { 'Content-Type': 'text/x-made-up' }, body: 'hi' });
  assert.equal(r2.status, 200);
  assert.equal(auto.hasChannel('ch'), true);
  const g = await rawRequest('GET', `${auto.url}ch/0`);
  assert.equal(g.headers['content-type'], 'text/x-made-up');
  assert.equal(g.body, 'hi');
});

test('case 3: POST /{ch} with Expect-Content creates the channel (autocreate) and /next answers 0', async (t) => {
  const srv = await startTrickleServer({ autocreate: true });
  t.after(() => srv.close());
  const c = await rawRequest('POST', `${srv.url}ch`, { headers: { 'Expect-Content': 'text/plain' } });
  assert.equal(c.status, 200);
  assert.equal(c.body, '');
  const n = await rawRequest('GET', `${srv.url}ch/next`);
  assert.equal(n.status, 200);
  assert.equal(n.body, '0');
  assert.equal(n.headers['lp-trickle-latest'], '0');
  const again = await rawRequest('POST', `${srv.url}ch`, { headers: { 'Expect-Content': 'video/MP2T' } });
  assert.equal(again.status, 200, 'existing channel: no-op 200');
});

test('case 4: two published segments read back with their seq and Latest', async (t) => {
  const srv = await startTrickleServer();
  t.after(() => srv.close());
  srv.createChannel('ch', 'text/plain');
  assert.equal((await rawRequest('POST', `${srv.url}ch/0`, { body: 'first' })).status, 200);
  const p1 = await rawRequest('POST', `${srv.url}ch/1`, { body: 'second' });
  assert.equal(p1.headers['lp-trickle-seq'], '1');
  const g0 = await rawRequest('GET', `${srv.url}ch/0`);
  const g1 = await rawRequest('GET', `${srv.url}ch/1`);
  assert.deepEqual([g0.body, g1.body], ['first', 'second']);
  assert.deepEqual([g0.headers['lp-trickle-seq'], g1.headers['lp-trickle-seq']], ['0', '1']);
  assert.deepEqual([g0.headers['lp-trickle-latest'], g1.headers['lp-trickle-latest']], ['2', '2']);
  assert.equal(g0.headers['content-type'], 'text/plain');
});

test('case 5: GET -1 before any write sends no headers until the first byte of seq 0', async (t) => {
  const srv = await startTrickleServer();
  t.after(() => srv.close());
  srv.createChannel('ch', 'text/plain');
  const get = new RawGet(`${srv.url}ch/-1`);
  await sleep(150);
  assert.equal(get.responded, false, 'long poll: no response headers yet');
  const post = new RawPost(`${srv.url}ch/0`);
  await sleep(50);
  assert.equal(get.responded, false, 'POST headers alone do not start the segment');
  await post.write('a');
  const res = await get.headersArrived;
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['lp-trickle-seq'], '0');
  await post.end('bc');
  assert.equal((await get.done).body, 'abc');
});

test('case 6: a reader joining mid-publish gets the buffered chunks at once, then live ones, and ends with the POST', async (t) => {
  const srv = await startTrickleServer();
  t.after(() => srv.close());
  srv.createChannel('ch', 'text/plain');
  const post = new RawPost(`${srv.url}ch/0`);
  const witness = new RawGet(`${srv.url}ch/0`);
  for (const c of ['c1.', 'c2.', 'c3.']) await post.write(c);
  await witness.waitBytes(9);
  const late = new RawGet(`${srv.url}ch/0`);
  await late.waitBytes(9);
  assert.equal(late.text, 'c1.c2.c3.');
  await post.write('c4.');
  await late.waitBytes(12);
  assert.equal(late.text, 'c1.c2.c3.c4.');
  await post.write('c5.');
  await post.write('c6.');
  await late.waitBytes(18);
  assert.equal(late.res?.complete, false, 'still open while the POST is');
  await post.end();
  assert.equal((await late.done).body, 'c1.c2.c3.c4.c5.c6.');
  await witness.done;
});

test('case 7: with 0–1 complete and 2 in progress, -2 reads seq 2 and -1 waits for seq 3', async (t) => {
  const srv = await startTrickleServer();
  t.after(() => srv.close());
  srv.createChannel('ch', 'text/plain');
  await rawRequest('POST', `${srv.url}ch/0`, { body: 's0' });
  await rawRequest('POST', `${srv.url}ch/1`, { body: 's1' });
  const p2 = new RawPost(`${srv.url}ch/2`);
  await p2.write('s2-part');
  await until(() => srv.nextWriteOf('ch') === 3);
  const cur = new RawGet(`${srv.url}ch/-2`);
  const res = await cur.headersArrived;
  assert.equal(res.headers['lp-trickle-seq'], '2');
  await cur.waitBytes(7);
  const nxt = new RawGet(`${srv.url}ch/-1`);
  await sleep(100);
  assert.equal(nxt.responded, false);
  await p2.end();
  await rawRequest('POST', `${srv.url}ch/3`, { body: 's3' });
  const r3 = await nxt.done;
  assert.equal(r3.headers['lp-trickle-seq'], '3');
  assert.equal(r3.body, 's3');
  assert.equal((await cur.done).body, 's2-part');
});

test('case 8: a seq whose slot was reused answers 470 with Latest and Seq', async (t) => {
  const srv = await startTrickleServer();
  t.after(() => srv.close());
  srv.createChannel('ch', 'text/plain');
  for (let i = 0; i < 10; i++) await rawRequest('POST', `${srv.url}ch/${i}`, { body: `s${i}` });
  const r = await rawRequest('GET', `${srv.url}ch/0`);
  assert.equal(r.status, 470);
  assert.equal(r.headers['lp-trickle-latest'], '10');
  assert.equal(r.headers['lp-trickle-seq'], '0');
  assert.equal(r.body, 'Entry not found');
  assert.equal((await rawRequest('GET', `${srv.url}ch/5`)).body, 's5', 'the last five are retained');
});

test('case 9: too far ahead is 470, the next seq waits, and seq 1 waits on a fresh channel (grace)', async (t) => {
  const srv = await startTrickleServer();
  t.after(() => srv.close());
  srv.createChannel('ch', 'text/plain');
  srv.createChannel('fresh', 'text/plain');
  for (let i = 0; i < 3; i++) await rawRequest('POST', `${srv.url}ch/${i}`, { body: `s${i}` });
  const ahead = await rawRequest('GET', `${srv.url}ch/5`);
  assert.equal(ahead.status, 470);
  assert.equal(ahead.headers['lp-trickle-latest'], '3');
  const waiting = new RawGet(`${srv.url}ch/3`);
  const grace = new RawGet(`${srv.url}fresh/1`);
  await sleep(150);
  assert.equal(waiting.responded, false);
  assert.equal(grace.responded, false);
  await rawRequest('POST', `${srv.url}ch/3`, { body: 's3' });
  await rawRequest('POST', `${srv.url}fresh/0`, { body: 'f0' });
  await rawRequest('POST', `${srv.url}fresh/1`, { body: 'f1' });
  assert.equal((await waiting.done).body, 's3');
  assert.equal((await grace.done).body, 'f1');
});

test('case 10 (keepaliveMs 200 stands in for 10 s): an idle POST gets repeated interim 100 Continue, then 200', async (t) => {
  const srv = await startTrickleServer({ keepaliveMs: 200 });
  t.after(() => srv.close());
  srv.createChannel('ch', 'text/plain');
  const post = new RawPost(`${srv.url}ch/0`);
  await until(() => post.interim >= 2, 3000);
  await post.write('late body');
  const r = await post.end();
  assert.equal(r.status, 200);
  assert.equal(r.headers['lp-trickle-seq'], '0');
  assert.equal((await rawRequest('GET', `${srv.url}ch/0`)).body, 'late body');
});

test('case 11: a preconnected POST for seq 1 does not move nextWrite; first bytes do, in order', async (t) => {
  const srv = await startTrickleServer();
  t.after(() => srv.close());
  srv.createChannel('ch', 'text/plain');
  const p1 = new RawPost(`${srv.url}ch/1`);
  const p0 = new RawPost(`${srv.url}ch/0`);
  await sleep(100);
  assert.equal(srv.nextWriteOf('ch'), 0);
  await p0.write('a');
  await until(() => srv.nextWriteOf('ch') === 1);
  await p0.end();
  assert.equal(srv.nextWriteOf('ch'), 1);
  await p1.write('b');
  await until(() => srv.nextWriteOf('ch') === 2);
  await p1.end();
});

test('case 12: a zero-byte segment is 200 with Seq and Connection: close, and reads back empty without Closed', async (t) => {
  const srv = await startTrickleServer();
  t.after(() => srv.close());
  srv.createChannel('ch', 'text/plain');
  const p = await rawRequest('POST', `${srv.url}ch/0`);
  assert.equal(p.status, 200);
  assert.equal(p.headers['lp-trickle-seq'], '0');
  assert.equal(p.headers.connection, 'close');
  const g = await rawRequest('GET', `${srv.url}ch/0`);
  assert.equal(g.status, 200);
  assert.equal(g.body, '');
  assert.equal(g.headers['lp-trickle-seq'], '0');
  assert.equal(g.headers['lp-trickle-latest'], '1');
  assert.equal(g.headers['lp-trickle-closed'], undefined);
});

test('case 13: DELETE of a channel answers the waiting GET and the preconnected POST with Lp-Trickle-Closed, then 404s', async (t) => {
  const srv = await startTrickleServer();
  t.after(() => srv.close());
  srv.createChannel('ch', 'text/plain');
  const get = new RawGet(`${srv.url}ch/-1`);
  const post = new RawPost(`${srv.url}ch/0`);
  await sleep(100);
  const del = await rawRequest('DELETE', `${srv.url}ch`);
  assert.equal(del.status, 200);
  const g = await get.done;
  assert.equal(g.status, 200);
  assert.equal(g.body, '');
  assert.equal(g.headers['lp-trickle-closed'], 'terminated');
  const p = await post.response;
  assert.equal(p.status, 200);
  assert.equal(p.headers['lp-trickle-closed'], 'terminated');
  post.destroy();
  assert.equal((await rawRequest('GET', `${srv.url}ch/0`)).status, 404);
  assert.equal((await rawRequest('POST', `${srv.url}ch/0`, { body: 'x' })).status, 404);
  assert.equal(srv.hasChannel('ch'), false);
});

test('case 14: DELETE of an unknown channel is 400 "Invalid stream"; of a seq not in its slot, 400 "Nonexistent segment"', async (t) => {
  const srv = await startTrickleServer();
  t.after(() => srv.close());
  const r1 = await rawRequest('DELETE', `${srv.url}unknown`);
  assert.equal(r1.status, 400);
  assert.equal(r1.body, 'Invalid stream\n');
  srv.createChannel('ch', 'text/plain');
  for (let i = 0; i < 3; i++) await rawRequest('POST', `${srv.url}ch/${i}`, { body: `s${i}` });
  const r2 = await rawRequest('DELETE', `${srv.url}ch/7`);
  assert.equal(r2.status, 400);
  assert.equal(r2.body, 'Nonexistent segment\n');
  assert.equal((await rawRequest('DELETE', `${srv.url}ch/2`)).status, 200);
});

test('case 15: Lp-Trickle-Reset closes older segments, releasing a reader stuck on a dead publisher', async (t) => {
  const srv = await startTrickleServer();
  t.after(() => srv.close());
  srv.createChannel('ch', 'text/plain');
  const dead = new RawPost(`${srv.url}ch/0`);
  await dead.write('Hello');
  const stuck = new RawGet(`${srv.url}ch/0`);
  await stuck.waitBytes(5);
  const reset = await rawRequest('POST', `${srv.url}ch/-1`, { headers: { 'Lp-Trickle-Reset': 'true' }, body: 'x' });
  assert.equal(reset.status, 200);
  assert.equal(reset.headers['lp-trickle-seq'], '1');
  assert.equal((await stuck.done).body, 'Hello');
  assert.equal((await rawRequest('GET', `${srv.url}ch/1`)).body, 'x');
  dead.destroy();
});

test('case 16: idle channels are swept (GET → 404) except names starting with "_"', async (t) => {
  // Idleness is measured on a clock the test moves, so a loaded machine cannot make "busy" look idle.
  const clock = new ManualClock();
  const srv = await startTrickleServer({ idleTimeoutMs: 100, sweepIntervalMs: 20, clock });
  t.after(() => srv.close());
  srv.createChannel('idle', 'text/plain');
  srv.createChannel('_internal', 'text/plain');
  srv.createChannel('busy', 'text/plain');
  // Written at 60 ms, checked at 150 ms: 'busy' has been idle 90 ms and 'idle' 150 ms (the sweep runs
  // on real time, so at no moment of the clock may 'busy' have been idle past the timeout).
  await clock.advance(60);
  assert.equal((await rawRequest('POST', `${srv.url}busy/0`, { body: 'tick' })).status, 200);
  await clock.advance(90);
  await waitFor('the idle channel swept', () => !srv.hasChannel('idle'), 5000);
  assert.equal((await rawRequest('GET', `${srv.url}idle/0`)).status, 404);
  assert.equal(srv.hasChannel('_internal'), true);
  assert.equal(srv.hasChannel('busy'), true, 'written within the idle timeout');
  await clock.advance(150);
  await waitFor('busy swept once it has been idle as long', () => !srv.hasChannel('busy'), 5000);
  assert.equal(srv.hasChannel('_internal'), true, '"_" channels made in-process are never swept');
});

test('case 17: the changefeed publishes an added and a removed segment', async (t) => {
  const srv = await startTrickleServer({ changefeed: true });
  t.after(() => srv.close());
  srv.createChannel('foo', 'text/plain');
  assert.equal((await rawRequest('DELETE', `${srv.url}foo`)).status, 200);
  const s0 = await rawRequest('GET', `${srv.url}_changes/0`);
  const s1 = await rawRequest('GET', `${srv.url}_changes/1`);
  assert.deepEqual(JSON.parse(s0.body), { added: ['foo'] });
  assert.deepEqual(JSON.parse(s1.body), { removed: ['foo'] });
  assert.equal(s0.headers['content-type'], 'application/json');
});

test('case 18: GET carries the mime fixed at creation, not the POST Content-Type', async (t) => {
  const srv = await startTrickleServer();
  t.after(() => srv.close());
  srv.createChannel('v', 'video/MP2T');
  await rawRequest('POST', `${srv.url}v/0`, { headers: { 'Content-Type': 'video/mp2t' }, body: 'ts' });
  const g = await rawRequest('GET', `${srv.url}v/0`);
  assert.equal(g.headers['content-type'], 'video/MP2T');
});

test('routes live under the configured base path; other paths are 404', async (t) => {
  const srv = await startTrickleServer({ basePath: '/ai/trickle' });
  t.after(() => srv.close());
  assert.match(srv.url, /\/ai\/trickle\/$/);
  srv.createChannel('ch', 'text/plain');
  assert.equal(srv.channelUrl('ch'), `${srv.url}ch`);
  assert.equal((await rawRequest('GET', `${srv.url}ch/next`)).status, 200);
  assert.equal((await rawRequest('GET', srv.url.replace('/ai/trickle/', '/ch/next'))).status, 404);
});

test('unsupported seqs answer 400 "Invalid idx" (deviation: Go drops the connection on -3…)', async (t) => {
  const srv = await startTrickleServer();
  t.after(() => srv.close());
  srv.createChannel('ch', 'text/plain');
  assert.equal((await rawRequest('GET', `${srv.url}ch/-3`)).body, 'Invalid idx\n');
  assert.equal((await rawRequest('GET', `${srv.url}ch/abc`)).status, 400);
  assert.equal((await rawRequest('POST', `${srv.url}ch/-2`, { body: 'x' })).status, 400);
  assert.equal((await rawRequest('POST', `${srv.url}ch/next`, { body: 'x' })).status, 400);
  assert.equal((await rawRequest('DELETE', `${srv.url}ch/-1`)).status, 400);
});

test('an aborted upload leaves its segment open until DELETE {ch}/{seq} releases the readers', async (t) => {
  const srv = await startTrickleServer();
  t.after(() => srv.close());
  srv.createChannel('ch', 'text/plain');
  const post = new RawPost(`${srv.url}ch/0`);
  await post.write('partial');
  const reader = new RawGet(`${srv.url}ch/0`);
  await reader.waitBytes(7);
  post.destroy();
  await sleep(100);
  assert.equal(reader.res?.complete, false);
  assert.equal((await rawRequest('DELETE', `${srv.url}ch/0`)).status, 200);
  assert.equal((await reader.done).body, 'partial');
});

test('close() answers every waiting request and frees the port', async () => {
  const srv = await startTrickleServer();
  srv.createChannel('ch', 'text/plain');
  const get = new RawGet(`${srv.url}ch/-1`);
  const post = new RawPost(`${srv.url}ch/0`);
  await sleep(50);
  await srv.close();
  assert.equal((await get.done).headers['lp-trickle-closed'], 'terminated');
  assert.equal((await post.response).headers['lp-trickle-closed'], 'terminated');
  post.destroy();
});
