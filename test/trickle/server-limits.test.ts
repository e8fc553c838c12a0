/**
 * The embedded trickle server's bounds (issue 17): segment size, channel count with autocreate, the
 * idle sweep of autocreated `_…` channels, and sockets answered on a client error being destroyed
 * rather than left half-open.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { rawRequest, sleep, startTrickleServer, until } from '../helpers/trickle.js';

test('a segment past maxSegmentBytes is refused with 413 and not buffered; readers get the segment closed at the limit', async (t) => {
  const srv = await startTrickleServer({ maxSegmentBytes: 64 * 1024 });
  t.after(() => srv.close());
  srv.createChannel('ch', 'video/MP2T');
  const r = await rawRequest('POST', `${srv.url}ch/0`, { body: Buffer.alloc(1024 * 1024, 1) });
  assert.equal(r.status, 413);
  assert.match(r.body, /Segment too large \(limit 65536 bytes\)/);
  const g = await rawRequest('GET', `${srv.url}ch/0`);
  assert.equal(g.status, 200);
  assert.ok(Buffer.byteLength(g.body) <= 128 * 1024, `reader got ${Buffer.byteLength(g.body)} bytes`);
  // The channel still works for the next segment.
  const ok = await rawRequest('POST', `${srv.url}ch/1`, { body: 'fine' });
  assert.equal(ok.status, 200);
});

test('with autocreate, a POST that would create one channel past maxChannels gets 429 and creates nothing', async (t) => {
  const srv = await startTrickleServer({ autocreate: true, maxChannels: 3 });
  t.after(() => srv.close());
  for (const name of ['a', 'b', 'c']) assert.equal((await rawRequest('POST', `${srv.url}${name}/0`, { body: 'x' })).status, 200);
  const r = await rawRequest('POST', `${srv.url}d/0`, { body: 'x' });
  assert.equal(r.status, 429);
  assert.match(r.body, /Too many channels \(limit 3\)/);
  assert.equal(srv.hasChannel('d'), false);
  // An existing channel is still writable.
  assert.equal((await rawRequest('POST', `${srv.url}a/1`, { body: 'x' })).status, 200);
});

test('an autocreated channel named _something is swept when idle like any other; the changefeed is kept', async (t) => {
  const srv = await startTrickleServer({ autocreate: true, changefeed: true, idleTimeoutMs: 100, sweepIntervalMs: 50 });
  t.after(() => srv.close());
  assert.equal((await rawRequest('POST', `${srv.url}_junk/0`, { body: 'x' })).status, 200);
  await until(() => !srv.hasChannel('_junk'), 3000);
  assert.equal(srv.hasChannel('_changes'), true);
});

test('a client error is answered and its socket destroyed, even when the client never closes its side', async (t) => {
  const srv = await startTrickleServer();
  t.after(() => srv.close());
  const sockets: net.Socket[] = [];
  t.after(() => sockets.forEach((s) => s.destroy()));
  for (let i = 0; i < 5; i++) {
    // allowHalfOpen: the client keeps its write side open after the server's FIN, as a hostile or
    // buggy client would; the server must still free its end.
    const s = net.connect({ port: srv.port, host: '127.0.0.1', allowHalfOpen: true });
    sockets.push(s);
    s.on('error', () => undefined);
    s.resume();
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.write('THIS IS NOT HTTP\r\n\r\n');
  }
  const countOpen = (): Promise<number> =>
    new Promise((resolve, reject) => (srv as unknown as { http: import('node:http').Server }).http.getConnections((e, n) => (e ? reject(e) : resolve(n))));
  let open = await countOpen();
  for (let i = 0; i < 40 && open > 0; i++) {
    await sleep(50);
    open = await countOpen();
  }
  assert.equal(open, 0, 'server-side sockets of answered client errors are all closed');
});
